package speechtest_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rspp/rspp/providers/rules/ruleset"
	"github.com/rspp/rspp/providers/speechtest"
)

const examples = "../../examples/"

// phrases returns the alternatives of a one-rule JSGF grammar.
func phrases(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := regexp.MustCompile(`(?m)//.*$`).ReplaceAllString(string(b), "")
	m := regexp.MustCompile(`(?s)public\s*<\w+>\s*=(.*?);`).FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("%s: no public rule", path)
	}
	var out []string
	for _, alt := range strings.Split(m[1], "|") {
		out = append(out, strings.Join(strings.Fields(alt), " "))
	}
	return out
}

func replies(t *testing.T) ruleset.File {
	t.Helper()
	b, err := os.ReadFile(examples + "replies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f ruleset.File
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestExamplesAgree: every user phrase has a reply, and every reply
// (default included) is a phrase of replies.jsgf.
func TestExamplesAgree(t *testing.T) {
	f := replies(t)
	user := phrases(t, examples+"grammar.jsgf")
	out := phrases(t, examples+"replies.jsgf")
	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	matches := map[string]bool{}
	for _, r := range f.Rules {
		matches[r.Match] = true
		if !has(out, r.Reply) {
			t.Errorf("reply %q is not in replies.jsgf", r.Reply)
		}
	}
	if !has(out, f.Default) {
		t.Errorf("default %q is not in replies.jsgf", f.Default)
	}
	for _, p := range user {
		if !matches[p] {
			t.Errorf("user phrase %q has no rule", p)
		}
	}
}

// TestExamplesRecognisable: espeak speech of every phrase of both grammars
// decodes back to exactly that phrase.
func TestExamplesRecognisable(t *testing.T) {
	speechtest.Require(t)
	ctx := context.Background()
	for _, g := range []string{"grammar.jsgf", "replies.jsgf"} {
		for _, p := range phrases(t, examples+g) {
			pcm, err := speechtest.Synthesize(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := speechtest.DecodePCM(ctx, pcm, examples+g)
			if err != nil {
				t.Fatal(err)
			}
			if got != p {
				t.Errorf("%s: %q decoded as %q", g, p, got)
			}
		}
	}
}

func TestSynthesizeIsDeterministic(t *testing.T) {
	speechtest.Require(t)
	a, err := speechtest.Synthesize(context.Background(), "hello there")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := speechtest.Synthesize(context.Background(), "hello there")
	if len(a) == 0 || string(a) != string(b) {
		t.Fatalf("two syntheses differ (%d vs %d bytes)", len(a), len(b))
	}
}
