package tool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindMissing(t *testing.T) {
	_, err := Find("rspp-no-such-tool", "rspp-pkg")
	var me *MissingError
	if !errors.As(err, &me) || me.Tool != "rspp-no-such-tool" || !strings.Contains(err.Error(), "apt-get install rspp-pkg") {
		t.Fatalf("got %v", err)
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	if err := CheckFile("grammar", file, false); err != nil {
		t.Fatal(err)
	}
	if err := CheckFile("hmm", dir, true); err != nil {
		t.Fatal(err)
	}
	var fe *FileError
	err := CheckFile("grammar", filepath.Join(dir, "missing"), false)
	if !errors.As(err, &fe) || fe.Field != "grammar" || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
	if err := CheckFile("grammar", dir, false); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("dir as file: %v", err)
	}
	if err := CheckFile("hmm", file, true); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("file as dir: %v", err)
	}
}

func TestCommandRunErrorCarriesStderr(t *testing.T) {
	sh, err := Find("sh", "dash")
	if err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	c := Command(ctx, sh, "-c", "echo bad input >&2; exit 3")
	err = c.Err(ctx, c.Run())
	var re *RunError
	if !errors.As(err, &re) || re.Stderr != "bad input" {
		t.Fatalf("got %v", err)
	}
}

func TestCommandCancelReturnsContextError(t *testing.T) {
	sleep, err := Find("sleep", "coreutils")
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := Command(ctx, sleep, "30")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := c.Err(ctx, c.Wait()); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
