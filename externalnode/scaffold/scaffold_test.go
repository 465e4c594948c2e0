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

// checkout is the RSPP checkout these tests run in (the package dir is
// externalnode/scaffold).
var checkout, _ = filepath.Abs("../..")

// Every language writes its project file pointing at the checkout, its
// executable with the exec bit, and no unexpanded template action.
func TestGenerateEveryLang(t *testing.T) {
	for _, tc := range []struct {
		lang, project, exe, wantInProject string
	}{
		{"go", "go.mod", "", "replace github.com/rspp/rspp => " + checkout},
		{"node", "package.json", "main.js", `"@rspp/node-sdk": "file:` + checkout + `/sdk/node"`},
		{"python", "pyproject.toml", "main.py", "file://" + checkout + "/sdk/python"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "p")
			written, err := Generate(Options{Name: "n-" + tc.lang, Lang: tc.lang, Dir: dir, SDK: checkout})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range written {
				b, _ := os.ReadFile(p)
				if strings.Contains(string(b), "{{") || strings.Contains(string(b), "<no value>") {
					t.Errorf("%s has unexpanded template actions", p)
				}
			}
			b, err := os.ReadFile(filepath.Join(dir, tc.project))
			if err != nil || !strings.Contains(string(b), tc.wantInProject) {
				t.Fatalf("%s lacks %q:\n%s", tc.project, tc.wantInProject, b)
			}
			if tc.exe != "" {
				if st, err := os.Stat(filepath.Join(dir, tc.exe)); err != nil || st.Mode()&0o111 == 0 {
					t.Fatalf("%s is not executable: %v", tc.exe, err)
				}
			}
		})
	}
	// go.mod lists every module the checkout requires, with go.sum's sums.
	dir := filepath.Join(t.TempDir(), "g")
	if _, err := Generate(Options{Name: "g", Dir: dir, SDK: checkout}); err != nil {
		t.Fatal(err)
	}
	mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	for _, m := range []string{"github.com/hashicorp/go-plugin", "google.golang.org/grpc"} {
		if !strings.Contains(string(mod), m+" v") {
			t.Errorf("go.mod lacks %s:\n%s", m, mod)
		}
	}
	sum, _ := os.ReadFile(filepath.Join(dir, "go.sum"))
	want, _ := os.ReadFile(filepath.Join(checkout, "go.sum"))
	if string(sum) != string(want) {
		t.Error("go.sum is not the checkout's")
	}
}

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
			written, err := Generate(Options{Name: "n-" + kind, Kind: kind, Dir: dir, SDK: checkout})
			if err != nil {
				t.Fatal(err)
			}
			if len(written) != 6 {
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
	_, err := Generate(Options{Name: "x", Dir: dir, SDK: checkout})
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
	if _, err := Generate(Options{Name: "x", Kind: "asr", Dir: t.TempDir(), SDK: checkout}); !errors.As(err, &ke) {
		t.Fatalf("kind: %v", err)
	}
	var ne *NameError
	if _, err := Generate(Options{Name: "../x", Dir: t.TempDir(), SDK: checkout}); !errors.As(err, &ne) {
		t.Fatalf("name: %v", err)
	}
	var le *LangError
	if _, err := Generate(Options{Name: "x", Lang: "rust", Dir: t.TempDir(), SDK: checkout}); !errors.As(err, &le) || !strings.Contains(err.Error(), `unknown language "rust"`) {
		t.Fatalf("lang: %v", err)
	}
	if _, err := Generate(Options{Name: "x", Lang: "python", Kind: "tts", Dir: t.TempDir(), SDK: checkout}); !errors.As(err, &le) || !strings.Contains(err.Error(), "custom only") {
		t.Fatalf("lang without the kind: %v", err)
	}
	var se *SDKError
	if _, err := Generate(Options{Name: "x", Dir: t.TempDir()}); !errors.As(err, &se) || !strings.Contains(err.Error(), "--sdk PATH") {
		t.Fatalf("no sdk: %v", err)
	}
	if _, err := Generate(Options{Name: "x", Dir: t.TempDir(), SDK: t.TempDir()}); !errors.As(err, &se) || !strings.Contains(err.Error(), "go.mod") {
		t.Fatalf("not a checkout: %v", err)
	}
}

func TestDefaultDirIsName(t *testing.T) {
	t.Chdir(t.TempDir())
	written, err := Generate(Options{Name: "echo", SDK: checkout})
	if err != nil {
		t.Fatal(err)
	}
	if written[0] != filepath.Join("echo", "go.mod") {
		t.Fatalf("written = %v", written)
	}
}

// FindSDK finds the checkout an rspp-node binary lives in (<checkout>/bin),
// through a symlink too, and nothing for a binary elsewhere.
func TestFindSDK(t *testing.T) {
	co := t.TempDir()
	if err := os.WriteFile(filepath.Join(co, "go.mod"), []byte("module "+Module+"\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(co, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(co, "bin", "rspp-node")
	if err := os.WriteFile(exe, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "rspp-node")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.EvalSymlinks(co)
	for _, p := range []string{exe, link} {
		if got := FindSDK(p); got != want {
			t.Errorf("FindSDK(%s) = %q, want %q", p, got, want)
		}
	}
	other := filepath.Join(t.TempDir(), "bin", "rspp-node")
	if got := FindSDK(other); got != "" {
		t.Errorf("FindSDK(%s) = %q, want none", other, got)
	}
}
