package scaffold

import (
	"errors"
	"go/format"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name, why string // why: "" for a valid name
	}{
		{"echo", ""},
		{"my-node_2", ""},
		{"A", ""},
		{"", "empty"},
		{"9lives", "must start with an ASCII letter"},
		{"-x", "must start with an ASCII letter"},
		{"my.node", `character '.' at byte 2`},
		{"a/b", `character '/' at byte 1`},
		{"caf\u00e9", `character 'é' at byte 3`},
		{strings.Repeat("n", MaxNameLen+1), "the limit is 64"},
	} {
		err := ValidateName(tc.name)
		if tc.why == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.name, err)
			}
			continue
		}
		var ne *NameError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%q: got %v, want a NameError saying %q", tc.name, err, tc.why)
		}
	}
}

func TestGenerateEveryKind(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "proj")
			written, err := Generate(Options{Name: "n-" + kind, Kind: kind, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if len(written) != 4 {
				t.Fatalf("written = %v", written)
			}
			for _, p := range written {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(p, ".go") {
					if f, err := format.Source(b); err != nil || string(f) != string(b) {
						t.Errorf("%s is not gofmt'ed (%v)", p, err)
					}
				}
				if strings.Contains(string(b), "{{") {
					t.Errorf("%s has unexpanded template actions", p)
				}
			}
			node, _ := os.ReadFile(filepath.Join(dir, "node.go"))
			if !strings.Contains(string(node), `Kind:    "`+kind+`"`) || !strings.Contains(string(node), `"n-`+kind+`"`) {
				t.Errorf("node.go does not report kind %s and its name", kind)
			}
		})
	}
}

func TestGenerateRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	if err := os.WriteFile(readme, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(Options{Name: "x", Dir: dir})
	var ee *ExistsError
	if !errors.As(err, &ee) || ee.Path != readme || !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want ExistsError naming %s", err, readme)
	}
	// Nothing was written, and the existing file is untouched.
	entries, _ := os.ReadDir(dir)
	if b, _ := os.ReadFile(readme); len(entries) != 1 || string(b) != "mine" {
		t.Fatalf("dir changed: %d entries, README %q", len(entries), b)
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	var ke *KindError
	if _, err := Generate(Options{Name: "x", Kind: "asr", Dir: t.TempDir()}); !errors.As(err, &ke) {
		t.Fatalf("kind: %v", err)
	}
	var ne *NameError
	if _, err := Generate(Options{Name: "../x", Dir: t.TempDir()}); !errors.As(err, &ne) {
		t.Fatalf("name: %v", err)
	}
}

func TestDefaultDirIsName(t *testing.T) {
	t.Chdir(t.TempDir())
	written, err := Generate(Options{Name: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	if written[0] != filepath.Join("echo", "main.go") {
		t.Fatalf("written = %v", written)
	}
}
