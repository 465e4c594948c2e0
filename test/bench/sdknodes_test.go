package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRoundTripSDKNodes: the Node.js and Python SDKs' echo nodes are
// measured in the same interleaved rounds as the Go node, each giving N
// samples and a ratio against the Go real path. No timing is asserted.
func TestRoundTripSDKNodes(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The package dir is test/bench; the SDKs are at the repository root.
	nodejs, why := sdkNode("../../sdk/node/examples/echo.js", "node", "../../sdk/node/dist/src/index.js")
	if nodejs == "" {
		t.Skipf("Node.js SDK echo node: %s", why)
	}
	python, why := sdkNode(filepath.Join("..", "..", "sdk", "python", "examples", "echo.py"), "/usr/bin/python3", "")
	if python == "" {
		t.Skipf("Python SDK echo node: %s", why)
	}
	const n = 100
	res, err := MeasureRoundTrips(context.Background(), RoundTripConfig{
		Self: self, TempDir: shortTempDir(t), Samples: n, Warmup: 10, Rounds: 2, Timeout: 2 * time.Minute,
		NodeJSNode: nodejs, PythonNode: python,
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Summary{NameNodeJS: res.NodeJS, NamePython: res.Python} {
		if s == nil || s.N != n || !(s.P50us > 0) {
			t.Fatalf("%s: %+v", name, s)
		}
	}
	for _, k := range []string{"nodejs/real", "python/real"} {
		if r, ok := res.Ratios[k]; !ok || !(r.P50 > 0) {
			t.Fatalf("ratio %s = %+v", k, r)
		}
	}
	t.Logf("p50: go %.0f µs, node.js %.0f µs, python %.0f µs", res.RealPath.P50us, res.NodeJS.P50us, res.Python.P50us)
}
