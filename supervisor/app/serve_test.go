package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/transports/wav"
)

// Must-show (RK-10 at serve): with max_sessions 2, serve's third session
// is refused with a typed reason and the two admitted sessions commit
// every turn; the summary line says what was refused.
func TestServeOnePastMaxSessionsIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time sessions")
	}
	path := testplugin.AdmissionConfig(t, "  max_sessions: 2\n", nil)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "in.wav")
	if err := wav.WriteFile(in, testplugin.Tone(400*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	term, err := Serve(context.Background(), cfg, ServeOptions{Inputs: []string{in}, Sessions: 3, Gap: 1500 * time.Millisecond,
		Duration: 5 * time.Second, Realtime: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("serve said:\n%s\nterminals %+v", out.String(), term)
	if !strings.Contains(out.String(), "lost: serve-") || !strings.Contains(out.String(), "session refused: max_sessions: at its limit of 2") {
		t.Errorf("no typed refusal of the third session in serve's output")
	}
	if !strings.Contains(out.String(), `"refused":{"max_sessions":1}`) {
		t.Errorf("the load summary does not count one max_sessions refusal")
	}
	if term.Sessions != 2 || term.Opened == 0 || term.Committed != term.Opened || term.WrongCount != 0 {
		t.Errorf("admitted sessions: %d, turns %d opened, %d committed, %d wrong; want 2 sessions committing every turn", term.Sessions, term.Opened, term.Committed, term.WrongCount)
	}
}
