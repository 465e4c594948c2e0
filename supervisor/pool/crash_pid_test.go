package pool

import (
	"errors"
	"strings"
	"testing"

	"github.com/rspp/rspp/externalnode"
)

// An instance that never started has no pid: the error says nothing of
// one rather than "(pid 0)"; one that started names its pid. A node's
// refusal of its config block is a config crash, not a handshake one.
func TestCrashErrorNamesOnlyARealPid(t *testing.T) {
	never := &CrashError{Provider: "p", Instance: "p#1", Kind: CrashHandshake, Err: errors.New("no such file")}
	if s := never.Error(); strings.Contains(s, "pid") {
		t.Fatalf("%q names a pid", s)
	}
	started := &CrashError{Provider: "p", Instance: "p#1", Pid: 4242, Kind: CrashHandshake, Err: errors.New("x")}
	if s := started.Error(); !strings.Contains(s, "(pid 4242)") {
		t.Fatalf("%q does not name pid 4242", s)
	}
	cfg := &externalnode.ConfigError{Instance: "p#1", Msg: `unknown key "nope"`}
	if k := configKind(cfg); k != CrashConfig {
		t.Fatalf("config refusal classified %s", k)
	}
	if k := configKind(errors.New("deadline exceeded")); k != CrashHandshake {
		t.Fatalf("a configure that never answered classified %s", k)
	}
	var ce *externalnode.ConfigError
	if err := (&CrashError{Kind: CrashConfig, Err: cfg}); !errors.As(err, &ce) {
		t.Fatal("CrashError does not unwrap to the ConfigError")
	}
}
