package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildExternalNode builds a node the way a third party would: the Go
// sources in srcDir are copied into a module of their own under dir
// (example.com/<name>), outside this repository, which requires the
// public SDK (github.com/rspp/rspp/externalnode) through a replace of the
// module path onto this checkout. Only the module cache is used (no
// network). It returns the binary's path.
func BuildExternalNode(dir, name, srcDir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	mod := filepath.Join(dir, "src", name)
	if err := os.MkdirAll(mod, 0o755); err != nil {
		return "", err
	}
	files, err := filepath.Glob(filepath.Join(srcDir, "*.go"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no Go sources in %s", srcDir)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(mod, filepath.Base(f)), b, 0o644); err != nil {
			return "", err
		}
	}
	goMod := fmt.Sprintf("module example.com/%s\n\ngo 1.26\n\nrequire github.com/rspp/rspp v0.0.0\n\nreplace github.com/rspp/rspp => %s\n", name, root)
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(goMod), 0o644); err != nil {
		return "", err
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(mod, "go.sum"), sum, 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "nodes", name)
	cmd := exec.Command("go", "build", "-mod=mod", "-o", out, ".")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building external node %s: %v\n%s", name, err, strings.TrimSpace(string(msg)))
	}
	return out, nil
}
