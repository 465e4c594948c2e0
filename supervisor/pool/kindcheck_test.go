package pool

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/supervisor/internal/testplugin"
)

// A node declaring kind custom, configured as tts: the pool does not start,
// the error names provider, configured and declared kind, and nothing of the
// started instance is left.
func TestPoolRefusesKindMismatch(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sockets := t.TempDir()
	pids := &PidLog{}
	_, err = Start(context.Background(), Config{
		Key: "voice#1", Provider: "voice", Kind: "tts", ConfigJSON: []byte(`{"role":"tts"}`),
		Launch:         Launch{Binary: self, Args: []string{testplugin.Arg}, SocketDir: sockets, StartTimeout: 10 * time.Second},
		HealthInterval: -1, Pids: pids,
	})
	var km *KindMismatchError
	if !errors.As(err, &km) || !errors.Is(err, ErrKindMismatch) {
		t.Fatalf("StartPool: %v, want a KindMismatchError", err)
	}
	if km.Provider != "voice" || km.Configured != "tts" || km.Declared != "custom" {
		t.Errorf("mismatch %+v, want provider voice, configured tts, declared custom", km)
	}
	for _, s := range []string{"voice", `"tts"`, `"custom"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if left := pids.Alive(); len(left) > 0 {
		t.Errorf("plugin processes left: %v", left)
	}
	if left, _ := os.ReadDir(sockets); len(left) > 0 {
		t.Errorf("socket dirs left: %v", left)
	}
}

// The same node declaring what it is configured as starts.
func TestPoolAcceptsMatchingKind(t *testing.T) {
	p, _ := testPool(t, func(c *Config) {
		c.Kind, c.Warm = "tts", 1
		c.Launch.Args = []string{testplugin.Arg, "tts"}
	})
	if k := p.Info().Kind; k != "tts" {
		t.Fatalf("pool info kind %q", k)
	}
}
