package sdk

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode/conformance"
	"github.com/rspp/rspp/test/testenv"
)

// TestBrokenNodesFailExactlyTheirCheck: for every check of rspp-node
// check, a node broken in that one way (fixtures/broken.py on the Python
// SDK) fails that check and no other; later checks that depend on it are
// skipped, never failed; the report names it.
func TestBrokenNodesFailExactlyTheirCheck(t *testing.T) {
	needPython(t)
	root := testenv.MustModuleRoot(t)
	tool := rsppNodeBin(t)
	dir := outsideDir(t)
	fixtures := filepath.Join(root, "test", "sdk", "fixtures")
	// What each failure must say.
	says := map[string]string{
		conformance.CheckHandshake:   "tcp|127.0.0.1:4000 refused",
		conformance.CheckDescribe:    "version is empty",
		conformance.CheckConfigure:   `key "voice" is required`,
		conformance.CheckHealth:      "not serving",
		conformance.CheckInvoke:      "lane does not match the type's prefix",
		conformance.CheckCancel:      "did not end within 2s",
		conformance.CheckQuiet:       "1 outputs arrived after the cancel",
		conformance.CheckCredits:     "the node granted no more credit",
		conformance.CheckBounded:     "exceeded bytes_per_s",
		conformance.CheckConcurrency: "busy: one invocation at a time",
		conformance.CheckShutdown:    "to exit after the controller's Shutdown, limit 500ms",
	}
	for _, rule := range conformance.Checks {
		t.Run(rule, func(t *testing.T) {
			script := filepath.Join(dir, "broken-"+rule+".py")
			body := fmt.Sprintf("#!/usr/bin/python3\nimport os, sys\nos.environ['BROKEN_RULE'] = %q\nos.environ['RSPP_PYTHON_SDK'] = %q\nsys.path.insert(0, %q)\nimport broken\nbroken.main()\n",
				rule, filepath.Join(root, "sdk", "python"), fixtures)
			if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
			r := run(t, dir, nil, 2*time.Minute, tool, "check", "--timeout", "5s", "--json", script)
			var rep struct {
				OK      bool `json:"ok"`
				Results []struct{ Check, Status, Detail string }
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("check --json: %v\n%s\n%s", err, r.stdout, r.stderr)
			}
			var failed []string
			detail := ""
			for _, res := range rep.Results {
				if res.Status == "fail" {
					failed = append(failed, res.Check)
					detail = res.Detail
				}
			}
			if r.code != 1 || rep.OK || !slices.Equal(failed, []string{rule}) {
				t.Fatalf("exit %d, failed %v, want exactly [%s]\n%s", r.code, failed, rule, r.stdout)
			}
			if !strings.Contains(detail, says[rule]) {
				t.Fatalf("%s failed with %q, want it to say %q", rule, detail, says[rule])
			}
			text := run(t, dir, nil, 2*time.Minute, tool, "check", "--timeout", "5s", script)
			if !strings.Contains(text.stdout, "FAIL  "+rule) || !strings.Contains(text.stdout, "checks did not pass: ") {
				t.Fatalf("text report does not name %s:\n%s", rule, text.stdout)
			}
			t.Logf("%s: %s", rule, detail)
		})
	}
}
