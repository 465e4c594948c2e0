package builtin

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor/session"
)

func filterFactory(t *testing.T, raw string) Factory {
	t.Helper()
	b, err := Lookup("text-filter")
	if err != nil {
		t.Fatal(err)
	}
	f, err := b.New(externalnode.Config{NodeID: "filter", Raw: []byte(raw)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTextFilterRewrites(t *testing.T) {
	cases := []struct {
		cfg, in, want string
	}{
		{`{"replace": {"darn": "d**n"}}`, "darn it, Darn", "d**n it, Darn"},
		{`{"replace": {"darn": "d**n"}, "lowercase": true}`, "darn it, Darn", "d**n it, d**n"},
		// Longest key first where keys overlap.
		{`{"replace": {"darn": "x", "darn it": "oh well"}}`, "darn it darn", "oh well x"},
		{`{"lowercase": true}`, "Hello There", "hello there"},
	}
	for _, c := range cases {
		f := filterFactory(t, c.cfg)().(*filter)
		if got := f.Rewrite(c.in); got != c.want {
			t.Errorf("%s: Rewrite(%q) = %q, want %q", c.cfg, c.in, got, c.want)
		}
	}
}

func TestTextFilterConfigErrors(t *testing.T) {
	b, _ := Lookup("text-filter")
	for raw, says := range map[string]string{
		`{"replace": {"a": "b"}, "upper": true}`: `unknown field "upper"`,
		`{}`:                                     "would change nothing",
		`{"replace": {"": "b"}}`:                 "empty key",
		`{"replace": ["a"]}`:                     "cannot unmarshal",
	} {
		_, err := b.New(externalnode.Config{NodeID: "filter", Raw: []byte(raw)})
		if !errors.Is(err, ErrBadFilter) || !strings.Contains(err.Error(), says) {
			t.Errorf("config %s: %v, want ErrBadFilter saying %q", raw, err, says)
		}
	}
	if _, err := passthrough.New(externalnode.Config{NodeID: "tap", Raw: []byte(`{"x": 1}`)}); err == nil {
		t.Error("passthrough took a config block")
	}
}

func TestLookupNamesTheKnownBuiltins(t *testing.T) {
	_, err := Lookup("vad9000")
	var ue *UnknownError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnknown) || ue.Name != "vad9000" {
		t.Fatalf("Lookup: %v", err)
	}
	for _, n := range []string{"text-filter", "passthrough"} {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("%q does not name the known builtin %s", err, n)
		}
	}
}

// hostPools serves session.Pools from a Host, as the Runtime does for its
// builtin pools.
type hostPools struct{ h *Host }

func (p hostPools) Open(pool string, req externalnode.OpenRequest, _ []string, hd externalnode.Handler) (session.Call, error) {
	c, err := p.h.Open(pool, req, hd)
	if err != nil {
		return nil, err
	}
	return c, nil
}

type builtinBindings struct{}

func (builtinBindings) Binding(p string) (kernel.Binding, bool) {
	b, err := Lookup(p)
	if err != nil {
		return kernel.Binding{}, false
	}
	return kernel.Binding{Provider: p, Version: b.Version, Pool: PoolKey(p), Accepts: b.Accepts, Emits: b.Emits}, true
}

type egress struct{ out []eventabi.Event }

func (e *egress) Send(ev eventabi.Event) error { e.out = append(e.out, ev); return nil }
func (e *egress) Fence(string, string)         {}

// The session driver runs a builtin through session.Pools like a plugin:
// a turn of ingress text -> filter -> passthrough -> egress commits with
// the text rewritten, and the session's close leaves no goroutine.
func TestSessionDriverRunsBuiltins(t *testing.T) {
	h := NewHost(Timeouts{}, 0)
	defer h.Close(5 * time.Second)
	if err := h.Register(PoolKey("text-filter"), textFilter, filterFactory(t, `{"replace": {"darn": "d**n"}}`)); err != nil {
		t.Fatal(err)
	}
	pf, _ := passthrough.New(externalnode.Config{})
	if err := h.Register(PoolKey("passthrough"), passthrough, pf); err != nil {
		t.Fatal(err)
	}
	out := &egress{}
	tl := &session.Collector{}
	s, err := session.Open(session.Config{
		Kernel: kernel.SessionConfig{SessionID: "s1", Bindings: builtinBindings{}, VAD: kernel.VADConfig{Disabled: true},
			Graph: kernel.GraphSpec{
				Nodes: []kernel.NodeSpec{{ID: "filter", Kind: "custom", Provider: "text-filter", Timeout: time.Minute},
					{ID: "tap", Kind: "custom", Provider: "passthrough", Timeout: time.Minute}},
				Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "filter"}, {From: "filter", To: "tap"}, {From: "tap", To: kernel.Egress}},
			}},
		Pools: hostPools{h}, Output: out, Timeline: tl,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []eventabi.Event{
		{Type: eventabi.TypeSpeechStart},
		{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: "well darn "}},
		{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: "well darn it", Final: true}},
		{Type: eventabi.TypeSpeechEnd},
	} {
		if err := s.Ingest(ev); err != nil {
			t.Fatalf("ingest %s: %v", ev.Type, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.ActiveTurn() != "" || !hasRecord(tl, "turn_close") {
		if time.Now().After(deadline) {
			t.Fatalf("the turn never closed: %v", types(tl))
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Close("done")
	if !hasRecord(tl, "turn_commit") {
		t.Fatalf("no commit: %v", types(tl))
	}
	var said []string
	for _, ev := range out.out {
		said = append(said, ev.Text.Text)
	}
	if got := strings.Join(said, "|"); got != "well d**n |well d**n it" {
		t.Fatalf("egress %q", got)
	}
}

func hasRecord(tl *session.Collector, typ string) bool {
	for _, r := range tl.Records() {
		if r.Type == typ {
			return true
		}
	}
	return false
}

func types(tl *session.Collector) []string {
	var out []string
	for _, r := range tl.Records() {
		out = append(out, r.Type+":"+r.Reason)
	}
	return out
}
