package ruleset_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/internal/tool"
	"github.com/rspp/rspp/providers/rules/ruleset"
	"github.com/rspp/rspp/providers/speechtest"
)

func configure(t *testing.T, dir, raw string) (*ruleset.Node, error) {
	t.Helper()
	n := ruleset.New("1.0.0")
	return n, n.Configure(context.Background(), externalnode.Config{NodeID: "llm", Dir: dir, Raw: []byte(raw)})
}

func mustConfigure(t *testing.T, dir, raw string) *ruleset.Node {
	t.Helper()
	n, err := configure(t, dir, raw)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func transcript(s string) eventabi.Event {
	return eventabi.Event{Type: eventabi.TypeTranscriptFinal, Text: &eventabi.Text{Text: s, Final: true}}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"  What   TIME is it? ": "what time is it",
		"Hello, there!":         "hello there",
		"don't\tstop\n":         "don't stop",
		"":                      "",
	} {
		if got := ruleset.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReplyOrder(t *testing.T) {
	tab, err := ruleset.NewTable([]ruleset.Rule{
		{Match: "time", Reply: "contains time"},
		{Match: "what time is it", Reply: "exact"},
		{Match: "hello", Reply: "contains hello"},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"What time is it?":        "exact",          // exact beats an earlier contains
		"so what time is it now":  "contains time",  // contains, table order
		"hello, what time is it":  "contains time",  // first rule in order wins
		"why hello":               "contains hello", // whole words only:
		"othello":                 ruleset.Fallback, // "hello" inside a word is no match
		"":                        ruleset.Fallback,
		"something else entirely": ruleset.Fallback,
	} {
		if got := tab.Reply(in); got != want {
			t.Errorf("Reply(%q) = %q, want %q", in, got, want)
		}
	}
	withDefault, _ := ruleset.NewTable(nil, "default reply")
	if got := withDefault.Reply("x"); got != "default reply" {
		t.Errorf("default: %q", got)
	}
}

func TestTableErrors(t *testing.T) {
	for name, rules := range map[string][]ruleset.Rule{
		"empty match": {{Match: " ?! ", Reply: "x"}},
		"empty reply": {{Match: "a", Reply: " "}},
		"duplicate":   {{Match: "a b", Reply: "x"}, {Match: "A  B", Reply: "y"}},
	} {
		_, err := ruleset.NewTable(rules, "")
		var re *ruleset.RuleError
		if !errors.As(err, &re) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestParseRejectsUnknownKeys(t *testing.T) {
	_, err := ruleset.Parse([]byte("rules:\n  - match: a\n    reply: b\n    weight: 3\n"))
	if err == nil || !strings.Contains(err.Error(), "weight") {
		t.Fatalf("got %v", err)
	}
	if _, err := ruleset.Parse(nil); !errors.Is(err, ruleset.ErrEmptyFile) {
		t.Fatalf("empty: %v", err)
	}
}

func TestExampleReplies(t *testing.T) {
	n := mustConfigure(t, "../../../examples", `{"replies": "replies.yaml"}`)
	for in, want := range map[string]string{
		"what time is it":          "it is time to test",
		"hello there":              "hello how can i help you",
		"tell me a joke":           "the computer went to sleep",
		"what is the weather like": "it is sunny and warm today",
		"goodbye":                  "goodbye and see you soon",
		"":                         "sorry i did not understand",
	} {
		evs, err := speechtest.Invoke(context.Background(), n, []eventabi.Event{transcript(in)})
		if err != nil {
			t.Fatal(err)
		}
		last := evs[len(evs)-1]
		if last.Type != eventabi.TypeTextFinal || last.Text.Text != want || !last.Text.Final {
			t.Errorf("%q: final %+v, want %q", in, last.Text, want)
		}
	}
}

func TestStreamsWordByWord(t *testing.T) {
	n := mustConfigure(t, "", `{"table": [{"match": "hi", "reply": "hello  dear   user"}]}`)
	evs, err := speechtest.Invoke(context.Background(), n, []eventabi.Event{
		{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: "H"}},
		{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: "i!"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var joined strings.Builder
	for _, ev := range evs[:len(evs)-1] {
		if ev.Type != eventabi.TypeTextDelta || ev.Text.Final || ev.TurnID != "turn-1" {
			t.Fatalf("bad delta %v", ev.String())
		}
		got = append(got, ev.Text.Text)
		joined.WriteString(ev.Text.Text)
	}
	if strings.Join(got, "|") != "hello |dear |user" {
		t.Fatalf("deltas %q", got)
	}
	final := evs[len(evs)-1]
	if final.Type != eventabi.TypeTextFinal || final.Text.Text != "hello dear user" || joined.String() != final.Text.Text {
		t.Fatalf("final %+v, deltas %q", final.Text, joined.String())
	}
}

func TestConfigureErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("rules: [{match: a}]\n"), 0o644)
	tests := []struct {
		name  string
		raw   string
		check func(error) bool
	}{
		{"nothing", `{}`, func(err error) bool { var ce *tool.ConfigError; return errors.As(err, &ce) }},
		{"both", `{"replies": "x.yaml", "table": []}`, func(err error) bool { var ce *tool.ConfigError; return errors.As(err, &ce) }},
		{"missing file", `{"replies": "x.yaml"}`, func(err error) bool {
			var fe *tool.FileError
			return errors.As(err, &fe) && fe.Path == filepath.Join(dir, "x.yaml")
		}},
		{"bad rule", `{"replies": "bad.yaml"}`, func(err error) bool { var re *ruleset.RuleError; return errors.As(err, &re) }},
		{"unknown field", `{"table": [], "model": "gpt"}`, func(err error) bool { return err != nil }},
		{"negative delay", `{"table": [], "token_delay_ms": -1}`, func(err error) bool { var ce *tool.ConfigError; return errors.As(err, &ce) }},
	}
	for _, tc := range tests {
		if _, err := configure(t, dir, tc.raw); !tc.check(err) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
}

func TestTokenDelayHonoursCancel(t *testing.T) {
	n := mustConfigure(t, "", `{"table": [], "default": "one two three four five six", "token_delay_ms": 200}`)
	in := make(chan eventabi.Event)
	close(in)
	ctx, cancel := context.WithCancel(context.Background())
	emitted := make(chan struct{}, 10)
	call := externalnode.NewTestCall("inv", "s", "t", "llm", in, func(eventabi.Event) error { emitted <- struct{}{}; return nil })
	done := make(chan error, 1)
	go func() { done <- n.Invoke(ctx, call) }()
	<-emitted // first word goes out at once
	cancel()
	start := time.Now()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Fatalf("took %v to honour cancel", el)
	}
	if len(emitted) != 0 {
		t.Fatalf("%d events after the first", len(emitted))
	}
}

func TestInvokeBeforeConfigure(t *testing.T) {
	if _, err := speechtest.Invoke(context.Background(), ruleset.New("t"), nil); !errors.Is(err, ruleset.ErrNotConfigured) {
		t.Fatalf("got %v", err)
	}
}
