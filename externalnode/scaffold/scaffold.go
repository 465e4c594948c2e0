// Package scaffold writes a new, working node project from templates, in
// Go, Node.js or Python: an example node that honours cancellation, its
// unit test (the SDK's in-memory test call), the project file (go.mod,
// package.json, pyproject.toml) pointing at a local RSPP checkout so that
// it builds and tests offline, and a README saying how to build and check
// it.
//
// It only ever creates files: it must never overwrite or delete anything.
//
// It imports nothing of this module.
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
	"slices"
	"strings"
	"text/template"
	"unicode"
)

//go:embed templates/*.tmpl templates/node/*.tmpl templates/python/*.tmpl
var templates embed.FS

// Kinds a scaffolded node may be.
var Kinds = []string{"custom", "stt", "llm", "tts"}

// Langs a node may be scaffolded in. Go has every kind; Node.js and Python
// have the custom kind.
var Langs = []string{"go", "node", "python"}

// MaxNameLen bounds a node name.
const MaxNameLen = 64

// Options says what to scaffold.
type Options struct {
	Name string
	Dir  string // default: ./Name
	Kind string // default: custom
	Lang string // default: go
	// SDK is the root of the RSPP checkout the project builds against
	// (go.mod replace, package.json file: dependency, Python sys.path).
	SDK string
	// Tool is how the README calls rspp-node (default "rspp-node").
	Tool string
}

// LangError says the language is not one of Langs, or lacks the kind.
type LangError struct{ Lang, Kind string }

func (e *LangError) Error() string {
	if e.Kind != "" {
		return fmt.Sprintf("--lang %s scaffolds kind custom only, not %q (use --lang go for stt, llm or tts)", e.Lang, e.Kind)
	}
	return fmt.Sprintf("unknown language %q: want one of %s", e.Lang, strings.Join(Langs, ", "))
}

// SDKError says the RSPP checkout to build against is missing or is not one.
type SDKError struct {
	Path   string
	Reason string
}

func (e *SDKError) Error() string {
	if e.Path == "" {
		return "no RSPP checkout to build against: pass --sdk PATH (the root of a checkout of github.com/rspp/rspp)"
	}
	return fmt.Sprintf("--sdk %s: %s", e.Path, e.Reason)
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

// file is one generated file: its name in the project and its template
// (or, when gen is set, its content made in Go).
type file struct {
	name, tmpl string
	mode       os.FileMode
	gen        func(data) ([]byte, error)
}

func files(lang, kind string) []file {
	switch lang {
	case "node":
		return []file{
			{name: "package.json", tmpl: "node/package.json.tmpl"},
			{name: "main.js", tmpl: "node/main.js.tmpl", mode: 0o755},
			{name: "node.js", tmpl: "node/node.js.tmpl"},
			{name: "node.test.js", tmpl: "node/node.test.js.tmpl"},
			{name: "README.md", tmpl: "node/README.md.tmpl"},
		}
	case "python":
		return []file{
			{name: "pyproject.toml", tmpl: "python/pyproject.toml.tmpl"},
			{name: "main.py", tmpl: "python/main.py.tmpl", mode: 0o755},
			{name: "node.py", tmpl: "python/node.py.tmpl"},
			{name: "test_node.py", tmpl: "python/test_node.py.tmpl"},
			{name: "README.md", tmpl: "python/README.md.tmpl"},
		}
	}
	return []file{
		{name: "go.mod", gen: goMod},
		{name: "go.sum", gen: goSum},
		{name: "main.go", tmpl: "main.go.tmpl"},
		{name: "node.go", tmpl: "node_" + kind + ".go.tmpl"},
		{name: "node_test.go", tmpl: "node_" + kind + "_test.go.tmpl"},
		{name: "README.md", tmpl: "README.md.tmpl"},
	}
}

// data is what templates see.
type data struct {
	Options
	// Dir is the project directory, absolute.
	AbsDir string
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
	if opts.Lang == "" {
		opts.Lang = "go"
	}
	if !slices.Contains(Langs, opts.Lang) {
		return nil, &LangError{Lang: opts.Lang}
	}
	if opts.Lang != "go" && opts.Kind != "custom" {
		return nil, &LangError{Lang: opts.Lang, Kind: opts.Kind}
	}
	if opts.Dir == "" {
		opts.Dir = opts.Name
	}
	if opts.Tool == "" {
		opts.Tool = "rspp-node"
	}
	sdk, err := CheckSDK(opts.SDK)
	if err != nil {
		return nil, err
	}
	opts.SDK = sdk
	abs, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	d := data{Options: opts, AbsDir: abs}
	d.Dir = abs
	targets := files(opts.Lang, opts.Kind)
	rendered := make([][]byte, len(targets))
	for i, f := range targets {
		b, err := render(f, d)
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
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := writeNew(p, rendered[i], mode); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}

func validKind(k string) bool { return slices.Contains(Kinds, k) }

// render executes one template; Go files come out gofmt'ed.
func render(f file, opts data) ([]byte, error) {
	if f.gen != nil {
		return f.gen(opts)
	}
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
func writeNew(p string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
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
