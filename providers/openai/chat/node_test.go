package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/internal/tool"
	"github.com/rspp/rspp/providers/openai/chat"
	"github.com/rspp/rspp/providers/openai/openaitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func server(t *testing.T) *openaitest.Server {
	t.Helper()
	s, err := openaitest.Start()
	if err != nil {
		t.Fatal(err)
	}
	s.TokenDelay = 5 * time.Millisecond
	t.Cleanup(s.Close)
	return s
}

func configured(t *testing.T, s *openaitest.Server, extra map[string]any) *chat.Node {
	t.Helper()
	cfg := map[string]any{"base_url": s.BaseURL, "model": "test-model", "backoff": "20ms"}
	for k, v := range extra {
		cfg[k] = v
	}
	raw, _ := json.Marshal(cfg)
	n := chat.New("test")
	if err := n.Configure(context.Background(), externalnode.Config{NodeID: "llm", Raw: raw}); err != nil {
		t.Fatal(err)
	}
	return n
}

type result struct {
	events []eventabi.Event
	err    error
}

func (r result) deltas() []string {
	var out []string
	for _, ev := range r.events {
		if ev.Type == eventabi.TypeTextDelta {
			out = append(out, ev.Text.Text)
		}
	}
	return out
}

func (r result) final() string {
	for _, ev := range r.events {
		if ev.Type == eventabi.TypeTextFinal {
			return ev.Text.Text
		}
	}
	return ""
}

func invoke(ctx context.Context, n *chat.Node, session, text string, deadline time.Time) result {
	in := make(chan eventabi.Event, 1)
	in <- eventabi.Event{Type: eventabi.TypeTranscriptFinal, Text: &eventabi.Text{Text: text, Final: true}}
	close(in)
	var r result
	call := externalnode.NewTestCall("inv-1", session, "turn-1", "llm", in, func(ev eventabi.Event) error {
		r.events = append(r.events, ev)
		return nil
	})
	call.Deadline = deadline
	r.err = n.Invoke(ctx, call)
	return r
}

func TestStreamsReplyAsDeltasThenFinalAndUsage(t *testing.T) {
	s := server(t)
	s.Reply = func(string) string { return "it is time to test" }
	n := configured(t, s, nil)
	r := invoke(context.Background(), n, "s1", "what time is it", time.Time{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	d := r.deltas()
	if len(d) != 5 || strings.Join(d, "") != "it is time to test" || r.final() != "it is time to test" {
		t.Fatalf("deltas %q final %q", d, r.final())
	}
	last := r.events[len(r.events)-1]
	if last.Type != eventabi.TypeMetric || last.Control == nil || last.Control.Signal != chat.UsageSignal ||
		!strings.Contains(last.Control.Reason, "completion_tokens=5") {
		t.Fatalf("usage event: %+v", last)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || !reqs[0].Stream || reqs[0].Model != "test-model" || reqs[0].Auth != "" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name     string
		faults   []openaitest.Fault
		extra    map[string]any
		budget   time.Duration
		kind     error  // nil: the reply arrives
		code     string // FailureCode
		requests int
		minGap   time.Duration // between first and last request
	}{
		{name: "429 with Retry-After is waited out", faults: []openaitest.Fault{{Kind: openaitest.Status, Status: 429, RetryAfter: 300 * time.Millisecond}},
			requests: 2, minGap: 290 * time.Millisecond},
		{name: "500 is retried", faults: []openaitest.Fault{{Kind: openaitest.Status, Status: 500}}, requests: 2},
		{name: "500 past the retries fails as upstream_error", extra: map[string]any{"max_retries": 2},
			faults: []openaitest.Fault{{Kind: openaitest.Status, Status: 500}, {Kind: openaitest.Status, Status: 502}, {Kind: openaitest.Status, Status: 503}},
			kind:   chat.ErrUpstream, code: "upstream_error", requests: 3},
		{name: "429 whose Retry-After passes the deadline fails at once as rate_limit", budget: 2 * time.Second,
			faults: []openaitest.Fault{{Kind: openaitest.Status, Status: 429, RetryAfter: 30 * time.Second}},
			kind:   chat.ErrRateLimit, code: "rate_limit", requests: 1},
		{name: "401 is auth, not retried", faults: []openaitest.Fault{{Kind: openaitest.Status, Status: 401}},
			kind: chat.ErrAuth, code: "auth", requests: 1},
		{name: "400 is bad_request, not retried", faults: []openaitest.Fault{{Kind: openaitest.Status, Status: 400}},
			kind: chat.ErrBadRequest, code: "bad_request", requests: 1},
		{name: "stall before any text is retried", extra: map[string]any{"stall_timeout": "150ms"},
			faults: []openaitest.Fault{{Kind: openaitest.Stall, After: 0}}, requests: 2},
		{name: "stall after text fails as upstream_timeout", extra: map[string]any{"stall_timeout": "150ms"},
			faults: []openaitest.Fault{{Kind: openaitest.Stall, After: 2}}, kind: chat.ErrUpstreamTimeout, code: "upstream_timeout", requests: 1},
		{name: "malformed chunk fails as upstream_error", faults: []openaitest.Fault{{Kind: openaitest.Malformed, After: 2}},
			kind: chat.ErrUpstream, code: "upstream_error", requests: 1},
		{name: "dropped connection after text fails as upstream_error", faults: []openaitest.Fault{{Kind: openaitest.Drop, After: 1}},
			kind: chat.ErrUpstream, code: "upstream_error", requests: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := server(t)
			s.Reply = func(string) string { return "hello there friend" }
			s.Script(tc.faults...)
			n := configured(t, s, tc.extra)
			var deadline time.Time
			if tc.budget > 0 {
				deadline = time.Now().Add(tc.budget)
			}
			start := time.Now()
			r := invoke(context.Background(), n, "s1", "hi", deadline)
			took := time.Since(start)
			reqs := s.Requests()
			if len(reqs) != tc.requests {
				t.Errorf("%d requests, want %d", len(reqs), tc.requests)
			}
			if tc.minGap > 0 && len(reqs) >= 2 && reqs[len(reqs)-1].At.Sub(reqs[0].At) < tc.minGap {
				t.Errorf("retried after %s, Retry-After asked for %s", reqs[len(reqs)-1].At.Sub(reqs[0].At), tc.minGap)
			}
			if tc.kind == nil {
				if r.err != nil || r.final() != "hello there friend" {
					t.Fatalf("err %v final %q", r.err, r.final())
				}
				return
			}
			if !errors.Is(r.err, tc.kind) {
				t.Fatalf("err %v, want %v", r.err, tc.kind)
			}
			if got := kernel.FailureCode(r.err); got != tc.code {
				t.Errorf("code %q, want %q", got, tc.code)
			}
			if r.final() != "" {
				t.Errorf("a failed reply must not end with text.final, got %q", r.final())
			}
			if tc.budget > 0 && took > tc.budget {
				t.Errorf("took %s, past the %s budget", took, tc.budget)
			}
		})
	}
}

// TestCancelClosesUpstreamStream: cancelling the invocation mid-reply
// closes the HTTP stream; the server sees its client go away.
func TestCancelClosesUpstreamStream(t *testing.T) {
	s := server(t)
	s.TokenDelay = 50 * time.Millisecond
	s.Reply = func(string) string { return strings.Repeat("word ", 100) }
	n := configured(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan eventabi.Event, 1)
	in <- eventabi.Event{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: "talk", Final: true}}
	close(in)
	var cancelAt time.Time
	deltas := 0
	call := externalnode.NewTestCall("inv-1", "s1", "turn-1", "llm", in, func(ev eventabi.Event) error {
		if ev.Type == eventabi.TypeTextDelta {
			deltas++
			if deltas == 3 {
				cancelAt = time.Now()
				cancel()
			}
		}
		return nil
	})
	err := n.Invoke(ctx, call)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	select {
	case c := <-s.Closed():
		t.Logf("server saw the close %s after cancel, after %d tokens", c.At.Sub(cancelAt), c.Tokens)
		if c.Tokens >= 100 {
			t.Fatalf("the whole reply was sent")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server never saw the stream close")
	}
}

func TestHistoryIsPerSessionAndBounded(t *testing.T) {
	s := server(t)
	s.Reply = func(u string) string { return "re " + u }
	n := configured(t, s, map[string]any{"history_turns": 2, "system_prompt": "be brief"})
	for _, u := range []string{"one", "two", "three"} {
		if r := invoke(context.Background(), n, "s1", u, time.Time{}); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if r := invoke(context.Background(), n, "s2", "other", time.Time{}); r.err != nil {
		t.Fatal(r.err)
	}
	reqs := s.Requests()
	roles := func(r openaitest.Request) string {
		var b []string
		for _, m := range r.Messages {
			b = append(b, m.Role+":"+m.Content)
		}
		return strings.Join(b, "|")
	}
	if got, want := roles(reqs[2]), "system:be brief|user:one|assistant:re one|user:two|assistant:re two|user:three"; got != want {
		t.Errorf("third request of s1:\n got %s\nwant %s", got, want)
	}
	if got, want := roles(reqs[3]), "system:be brief|user:other"; got != want {
		t.Errorf("first request of s2: got %s want %s", got, want)
	}
	if r := invoke(context.Background(), n, "s1", "four", time.Time{}); r.err != nil {
		t.Fatal(r.err)
	}
	if got, want := roles(s.Requests()[4]), "system:be brief|user:two|assistant:re two|user:three|assistant:re three|user:four"; got != want {
		t.Errorf("history not bounded to 2 exchanges:\n got %s\nwant %s", got, want)
	}
}

func TestAPIKeyFromNamedVariable(t *testing.T) {
	s := server(t)
	s.Key = "sk-test-secret-value"
	t.Setenv("RSPP_TEST_OPENAI_KEY", s.Key)
	n := configured(t, s, map[string]any{"api_key_env": "RSPP_TEST_OPENAI_KEY"})
	if r := invoke(context.Background(), n, "s1", "hi", time.Time{}); r.err != nil {
		t.Fatal(r.err)
	}
	if got := s.Requests()[0].Auth; got != "Bearer "+s.Key {
		t.Fatalf("auth header %q", got)
	}
	// A wrong key: auth, and the error never shows the key.
	t.Setenv("RSPP_TEST_OPENAI_KEY", "sk-wrong-secret")
	n = configured(t, s, map[string]any{"api_key_env": "RSPP_TEST_OPENAI_KEY"})
	r := invoke(context.Background(), n, "s1", "hi", time.Time{})
	if !errors.Is(r.err, chat.ErrAuth) || strings.Contains(r.err.Error(), "secret") {
		t.Fatalf("err %v", r.err)
	}
}

func TestConfigureErrors(t *testing.T) {
	t.Setenv("RSPP_TEST_UNSET_KEY", "")
	for _, tc := range []struct{ raw, field string }{
		{`{"base_url": "http://x/v1"}`, "model"},
		{`{"model": "m", "base_url": "ftp://x"}`, "base_url"},
		{`{"model": "m", "temperature": 3}`, "temperature"},
		{`{"model": "m", "stall_timeout": "soon"}`, "stall_timeout"},
		{`{"model": "m", "api_key_env": "RSPP_TEST_UNSET_KEY"}`, "api_key_env"},
	} {
		err := chat.New("t").Configure(context.Background(), externalnode.Config{NodeID: "llm", Raw: []byte(tc.raw)})
		var ce *tool.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: got %v, want a config error on %s", tc.raw, err, tc.field)
		}
	}
	if err := chat.New("t").Configure(context.Background(), externalnode.Config{NodeID: "llm", Raw: []byte(`{"model":"m","nope":1}`)}); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestInvokeBeforeConfigure(t *testing.T) {
	r := invoke(context.Background(), chat.New("t"), "s", "hi", time.Time{})
	if !errors.Is(r.err, chat.ErrNotConfigured) {
		t.Fatal(r.err)
	}
}
