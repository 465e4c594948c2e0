package wsload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
)

var (
	buildOnce sync.Once
	built     testenv.Bins
	sttBin    string
	buildErr  error
	buildDir  string
)

// buildServer builds rspp, the providers and energystt (outside the
// repository, as a third party would) once per test binary, into a
// directory TestMain removes.
func buildServer(t *testing.T) (testenv.Bins, string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "rspp-wsload-bin-")
		if buildErr != nil {
			return
		}
		if built, buildErr = testenv.Build(buildDir); buildErr != nil {
			return
		}
		root, _ := testenv.ModuleRoot()
		sttBin, buildErr = testenv.BuildExternalNode(buildDir, "energystt", filepath.Join(root, "test", "wsload", "testdata", "nodes", "energystt"))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built, sttBin
}

// startRealServer starts rspp serve --listen with the real plugin
// processes. When the test ends it is stopped if still running, and no
// process of the test's binaries may be left.
func startRealServer(t *testing.T, instances int) *Server {
	t.Helper()
	speechtest.Require(t)
	bins, stt := buildServer(t)
	// Unix socket paths must stay short: t.TempDir's names are long.
	state, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	s, err := StartServer(ServerConfig{RSPP: bins.RSPP, STT: stt, Rules: bins.Provider["rules"], Espeak: bins.Provider["espeak"],
		Replies: filepath.Join(testenv.MustModuleRoot(t), "examples", "replies.yaml"), Instances: instances,
		Dir: t.TempDir(), StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(20 * time.Second); err != nil {
			t.Errorf("%v\n%s", err, s.Output())
		}
		deadline := time.Now().Add(2 * time.Second)
		for len(testenv.ProcsUnder(bins.Dir)) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if left := testenv.ProcsUnder(bins.Dir); len(left) > 0 {
			t.Errorf("processes left behind: %v", left)
		}
	})
	return s
}

// spoken synthesises phrase with espeak as an Utterance.
func spoken(t *testing.T, phrase string) Utterance {
	t.Helper()
	pcm, err := speechtest.Synthesize(context.Background(), phrase)
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUtterance(fmt.Sprintf("%q", phrase), pcm, DefaultVoicedDB)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func logReport(t *testing.T, r *Report) {
	t.Helper()
	var sb strings.Builder
	r.Print(&sb)
	t.Log("\n" + sb.String())
}
