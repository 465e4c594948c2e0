package sphinx

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The full en-us dictionary is 3 MB of 135,000 words; pocketsphinx loads it
// on every decode, which cost ~120 of the ~150 CPU ms a one-second
// utterance took. A grammar names a few dozen words: the decoder is given a
// dictionary of those alone (the same entries, pronunciation variants
// included), made once per grammar and dictionary.

var (
	jsgfComment = regexp.MustCompile(`(?s)/\*.*?\*/|//[^\n]*`)
	// rule references, tags and weights carry no words
	jsgfNonWords = regexp.MustCompile(`<[^>]*>|\{[^}]*\}|/[0-9.eE+-]+/`)
	jsgfSplit    = regexp.MustCompile(`[\s|()\[\]*+]+`)
)

// grammarWords are the words a JSGF grammar's rule expansions use,
// lowercased as the dictionary spells them.
func grammarWords(grammar string) map[string]bool {
	words := map[string]bool{}
	for _, stmt := range strings.Split(jsgfComment.ReplaceAllString(grammar, " "), ";") {
		_, expansion, ok := strings.Cut(stmt, "=")
		if !ok {
			continue // the header, grammar and import lines
		}
		for _, w := range jsgfSplit.Split(jsgfNonWords.ReplaceAllString(expansion, " "), -1) {
			if w != "" {
				words[strings.ToLower(w)] = true
			}
		}
	}
	return words
}

// variant matches a dictionary word's alternative pronunciation suffix:
// "the(2)".
var variant = regexp.MustCompile(`\(\d+\)$`)

// trimDict returns a dictionary holding only dict's entries for the words
// of grammarPath, written to dir (or found there from an earlier start: its
// name is a hash of both inputs). ok is false when it cannot serve: a word
// of the grammar is not in dict, or nothing could be read or written; the
// caller then uses dict itself, and pocketsphinx reports what it lacks.
func trimDict(dict, grammarPath, dir string) (string, bool) {
	g, err := os.ReadFile(grammarPath)
	if err != nil {
		return "", false
	}
	words := grammarWords(string(g))
	if len(words) == 0 {
		return "", false
	}
	st, err := os.Stat(dict)
	if err != nil {
		return "", false
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00", dict, st.Size(), st.ModTime().UnixNano())
	h.Write(g)
	path := filepath.Join(dir, "rspp-pocketsphinx-"+hex.EncodeToString(h.Sum(nil))[:16]+".dict")
	if _, err := os.Stat(path); err == nil {
		return path, true
	}
	f, err := os.Open(dict)
	if err != nil {
		return "", false
	}
	defer f.Close()
	var kept strings.Builder
	found := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		w, _, _ := strings.Cut(line, " ")
		if base := variant.ReplaceAllString(w, ""); words[base] {
			found[base] = true
			kept.WriteString(line)
			kept.WriteByte('\n')
		}
	}
	if sc.Err() != nil || len(found) != len(words) {
		return "", false
	}
	tmp, err := os.CreateTemp(dir, "rspp-pocketsphinx-*.dict.tmp")
	if err != nil {
		return "", false
	}
	_, werr := tmp.WriteString(kept.String())
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		_ = os.Remove(tmp.Name())
		return "", false
	}
	return path, true
}
