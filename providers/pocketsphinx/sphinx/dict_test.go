package sphinx

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rspp/rspp/externalnode"
)

func TestGrammarWordsAreTheExpansionsWords(t *testing.T) {
	g := `#JSGF V1.0;
// a comment: ignored words
grammar user; /* more ignored */
import <other.rule>;
public <utterance> = what time is it | <greeting> [please] {tag} /2.5/ goodbye;
<greeting> = (Hello | hi)+ there;
`
	got := grammarWords(g)
	var words []string
	for w := range got {
		words = append(words, w)
	}
	slices.Sort(words)
	want := []string{"goodbye", "hello", "hi", "is", "it", "please", "there", "time", "what"}
	if !slices.Equal(words, want) {
		t.Fatalf("grammar words %v, want %v", words, want)
	}
}

func TestTrimDictKeepsTheGrammarsEntriesOnly(t *testing.T) {
	dir := t.TempDir()
	dict := filepath.Join(dir, "full.dict")
	if err := os.WriteFile(dict, []byte("hello HH AH L OW\nhello(2) HH EH L OW\nthere DH EH R\nzebra Z IY B R AH\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	grammar := filepath.Join(dir, "g.jsgf")
	if err := os.WriteFile(grammar, []byte("#JSGF V1.0;\ngrammar g;\npublic <u> = hello there;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	small, ok := trimDict(dict, grammar, dir)
	if !ok {
		t.Fatal("not trimmed")
	}
	b, err := os.ReadFile(small)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "hello HH AH L OW\nhello(2) HH EH L OW\nthere DH EH R\n" {
		t.Fatalf("trimmed dictionary:\n%s", got)
	}
	// A second start finds it; a grammar word the dictionary lacks falls
	// back to the full dictionary.
	if again, ok := trimDict(dict, grammar, dir); !ok || again != small {
		t.Fatalf("second start: %s %v", again, ok)
	}
	if err := os.WriteFile(grammar, []byte("#JSGF V1.0;\ngrammar g;\npublic <u> = hello unicorn;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, ok := trimDict(dict, grammar, dir); ok {
		t.Fatalf("trimmed %s without a word of the grammar", p)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if len(left) > 0 {
		t.Fatalf("left %v", left)
	}
}

// With the installed en-us dictionary and the example grammar, the decoder
// is given a dictionary of a few dozen lines instead of 135,000.
func TestDecoderUsesTheTrimmedDictionary(t *testing.T) {
	if _, err := os.Stat(DefaultDict); err != nil {
		t.Skipf("no pocketsphinx dictionary at %s (apt: %s): %v", DefaultDict, AptPackages, err)
	}
	if _, err := NewDecoder("", "", "", "../../../examples/grammar.jsgf"); err != nil {
		t.Skipf("no pocketsphinx here: %v", err)
	}
	scratch := t.TempDir()
	t.Setenv(ScratchEnv, scratch)
	n := New("t")
	if err := n.Configure(context.Background(), externalnode.Config{Raw: []byte(`{"grammar": "../../../examples/grammar.jsgf"}`)}); err != nil {
		t.Fatal(err)
	}
	d := n.dec.Load()
	if d.Dict == DefaultDict || filepath.Dir(d.Dict) != scratch {
		t.Fatalf("the node decodes with %s, want a trimmed dictionary in its scratch dir %s", d.Dict, scratch)
	}
	b, err := os.ReadFile(d.Dict)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n == 0 || n > 200 {
		t.Fatalf("trimmed dictionary has %d lines", n)
	}
}
