package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// sdkNode returns the absolute path of an SDK echo node to measure, or ""
// and why not: the script, its interpreter, or what it needs (the built
// Node.js SDK) is missing.
func sdkNode(script, interpreter, needs string) (string, string) {
	if script == "" {
		return "", ""
	}
	abs, err := filepath.Abs(script)
	if err != nil {
		return "", err.Error()
	}
	if _, err := os.Stat(abs); err != nil {
		return "", err.Error()
	}
	if _, err := exec.LookPath(interpreter); err != nil {
		return "", fmt.Sprintf("%s: %v", interpreter, err)
	}
	if filepath.Base(interpreter) == "python3" {
		if out, err := exec.Command(interpreter, "-c", "import grpc.aio, google.protobuf").CombinedOutput(); err != nil {
			return "", fmt.Sprintf("%s has no grpcio/protobuf (Debian python3-grpcio python3-protobuf): %v %s", interpreter, err, out)
		}
	}
	if needs != "" {
		if _, err := os.Stat(needs); err != nil {
			return "", fmt.Sprintf("%v (make sdk builds it)", err)
		}
	}
	return abs, ""
}
