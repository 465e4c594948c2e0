// Package tool is what the speech providers share for wrapping external
// programs (espeak-ng, sox, pocketsphinx): finding them, checking the files
// they read, running them as owned children of a context, and the typed
// errors that name what was wrong.
//
// It never runs anything through a shell: arguments go to execve as they are,
// so user text can never be interpreted as shell syntax.
package tool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/rspp/rspp/externalnode"
)

// MissingError says an external program is not installed.
type MissingError struct {
	Tool    string // program name or path, e.g. "espeak-ng"
	Package string // Debian package that provides it
	Err     error
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s not found (install the %s package: apt-get install %s): %v", e.Tool, e.Package, e.Package, e.Err)
}

func (e *MissingError) Unwrap() error { return e.Err }

// Find resolves a program name (or path) with exec.LookPath.
func Find(name, aptPackage string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", &MissingError{Tool: name, Package: aptPackage, Err: err}
	}
	return p, nil
}

// FileError says a file or directory a config field names is unusable.
type FileError struct {
	Field string // config field, e.g. "grammar"
	Path  string
	Err   error
}

func (e *FileError) Error() string {
	return fmt.Sprintf("config field %q: %s: %v", e.Field, e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// ErrWrongKind is wrapped by FileError when a path is a directory where a
// file is needed or the other way round.
var ErrWrongKind = errors.New("wrong kind of file")

// CheckFile checks that path exists and is a regular file (wantDir false) or
// a directory (wantDir true).
func CheckFile(field, path string, wantDir bool) error {
	if path == "" {
		return &FileError{Field: field, Path: path, Err: os.ErrNotExist}
	}
	st, err := os.Stat(path)
	if err != nil {
		return &FileError{Field: field, Path: path, Err: err}
	}
	switch {
	case wantDir && !st.IsDir():
		return &FileError{Field: field, Path: path, Err: fmt.Errorf("%w: want a directory", ErrWrongKind)}
	case !wantDir && !st.Mode().IsRegular():
		return &FileError{Field: field, Path: path, Err: fmt.Errorf("%w: want a regular file", ErrWrongKind)}
	}
	return nil
}

// ConfigError says a config field holds an unusable value.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("config field %q: %s", e.Field, e.Reason)
}

// RunError says an external program failed; Stderr is the tail of what it
// wrote there.
type RunError struct {
	Tool   string
	Err    error
	Stderr string
}

func (e *RunError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("%s: %v", e.Tool, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Tool, e.Err, e.Stderr)
}

func (e *RunError) Unwrap() error { return e.Err }

// waitDelay bounds how long Wait waits for the child's pipes after the child
// was killed (a grandchild holding them must not hang the invocation).
const waitDelay = 2 * time.Second

// Cmd is an external program bound to a context: cancelling the context
// kills it (SIGKILL). The caller must call Wait (or Run) once started, so
// the child is always reaped.
type Cmd struct {
	*exec.Cmd
	name   string
	stderr *externalnode.Tail
}

// Command prepares path with args; nothing goes through a shell.
func Command(ctx context.Context, path string, args ...string) *Cmd {
	c := exec.CommandContext(ctx, path, args...)
	c.WaitDelay = waitDelay
	t := &externalnode.Tail{Max: 2048}
	c.Stderr = t
	return &Cmd{Cmd: c, name: path, stderr: t}
}

// Err wraps a Start/Wait/Run error as a *RunError carrying the stderr tail.
// When the context was cancelled, it returns the context's error instead:
// the kill was ours, not the tool's failure.
func (c *Cmd) Err(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &RunError{Tool: c.name, Err: err, Stderr: strings.TrimSpace(c.stderr.String())}
}
