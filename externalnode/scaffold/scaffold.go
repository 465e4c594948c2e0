// Package scaffold writes a new, working node project from templates: a thin
// main calling externalnode.Serve, an example node of the chosen kind that
// honours cancellation, its unit test (externalnode.NewTestCall) and a
// README saying how to build and check it.
//
// It only ever creates files: it must never overwrite or delete anything.
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"unicode"
)

//go:embed templates/*.tmpl
var templates embed.FS

// Kinds a scaffolded node may be.
var Kinds = []string{"custom", "stt", "llm", "tts"}

// MaxNameLen bounds a node name.
const MaxNameLen = 64

// Options says what to scaffold.
type Options struct {
	Name string
	Dir  string // default: ./Name
	Kind string // default: custom
}

// NameError says a node name is unusable, and why.
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string { return fmt.Sprintf("invalid node name %q: %s", e.Name, e.Reason) }

// KindError says the kind is not one of Kinds.
type KindError struct{ Kind string }

func (e *KindError) Error() string {
	return fmt.Sprintf("unknown node kind %q: want one of %s", e.Kind, strings.Join(Kinds, ", "))
}

// ExistsError says a file scaffolding would write is already there; nothing
// was written.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s already exists: refusing to overwrite it", e.Path)
}

// Unwrap lets callers match fs.ErrExist.
func (e *ExistsError) Unwrap() error { return fs.ErrExist }

// ValidateName checks that name can name a node and its binary: a letter
// first, then letters, digits, '-' or '_', at most MaxNameLen bytes.
func ValidateName(name string) error {
	switch {
	case name == "":
		return &NameError{Name: name, Reason: "it is empty"}
	case len(name) > MaxNameLen:
		return &NameError{Name: name, Reason: fmt.Sprintf("it is %d bytes long, the limit is %d", len(name), MaxNameLen)}
	}
	for i, r := range name {
		switch {
		case i == 0 && !(r < unicode.MaxASCII && unicode.IsLetter(r)):
			return &NameError{Name: name, Reason: fmt.Sprintf("it must start with an ASCII letter, not %q", r)}
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)), r == '-', r == '_':
		default:
			return &NameError{Name: name, Reason: fmt.Sprintf("character %q at byte %d is not a letter, digit, '-' or '_'", r, i)}
		}
	}
	return nil
}

// file is one generated file: its name in the project and its template.
type file struct{ name, tmpl string }

func files(kind string) []file {
	return []file{
		{"main.go", "main.go.tmpl"},
		{"node.go", "node_" + kind + ".go.tmpl"},
		{"node_test.go", "node_" + kind + "_test.go.tmpl"},
		{"README.md", "README.md.tmpl"},
	}
}

// Generate writes the project and returns the paths it created. It checks
// every target first and writes nothing if any exists (*ExistsError).
func Generate(opts Options) ([]string, error) {
	if err := ValidateName(opts.Name); err != nil {
		return nil, err
	}
	if opts.Kind == "" {
		opts.Kind = "custom"
	}
	if !validKind(opts.Kind) {
		return nil, &KindError{Kind: opts.Kind}
	}
	if opts.Dir == "" {
		opts.Dir = opts.Name
	}
	targets := files(opts.Kind)
	rendered := make([][]byte, len(targets))
	for i, f := range targets {
		b, err := render(f, opts)
		if err != nil {
			return nil, err
		}
		rendered[i] = b
		if _, err := os.Lstat(filepath.Join(opts.Dir, f.name)); err == nil {
			return nil, &ExistsError{Path: filepath.Join(opts.Dir, f.name)}
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for i, f := range targets {
		p := filepath.Join(opts.Dir, f.name)
		if err := writeNew(p, rendered[i]); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}

func validKind(k string) bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// render executes one template; Go files come out gofmt'ed.
func render(f file, opts Options) ([]byte, error) {
	t, err := template.ParseFS(templates, "templates/"+f.tmpl)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, opts); err != nil {
		return nil, fmt.Errorf("template %s: %w", f.tmpl, err)
	}
	if !strings.HasSuffix(f.name, ".go") {
		return buf.Bytes(), nil
	}
	out, err := format.Source(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("template %s does not format: %w", f.tmpl, err)
	}
	return out, nil
}

// writeNew creates p exclusively: a file that appeared since the check is
// still never overwritten.
func writeNew(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return &ExistsError{Path: p}
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
