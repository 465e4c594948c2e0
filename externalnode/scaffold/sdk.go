package scaffold

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/modfile"
)

// Module is the RSPP module path.
const Module = "github.com/rspp/rspp"

// CheckSDK returns the absolute root of the RSPP checkout at p: a
// directory whose go.mod is module Module.
func CheckSDK(p string) (string, error) {
	if p == "" {
		return "", &SDKError{}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", &SDKError{Path: p, Reason: err.Error()}
	}
	mf, err := readMod(abs)
	if err != nil {
		return "", &SDKError{Path: p, Reason: err.Error()}
	}
	if mf.Module == nil || mf.Module.Mod.Path != Module {
		return "", &SDKError{Path: p, Reason: fmt.Sprintf("go.mod is not module %s", Module)}
	}
	return abs, nil
}

// FindSDK finds the checkout an rspp-node binary at exe belongs to
// (exe in <checkout>/bin), or "".
func FindSDK(exe string) string {
	real, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return ""
	}
	root := filepath.Dir(filepath.Dir(real))
	if _, err := CheckSDK(root); err != nil {
		return ""
	}
	return root
}

func readMod(root string) (*modfile.File, error) {
	p := filepath.Join(root, "go.mod")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return modfile.Parse(p, b, nil)
}

// goMod writes the project's go.mod: the checkout as a replace, and every
// module the checkout requires, so that building the node needs nothing
// that the checkout's own build did not already fetch (go mod tidy
// would want test dependencies of dependencies: offline it fails).
func goMod(d data) ([]byte, error) {
	sdk, err := readMod(d.SDK)
	if err != nil {
		return nil, err
	}
	f := &modfile.File{}
	if err := f.AddModuleStmt("example.com/" + d.Name); err != nil {
		return nil, err
	}
	if sdk.Go != nil {
		if err := f.AddGoStmt(sdk.Go.Version); err != nil {
			return nil, err
		}
	}
	f.AddNewRequire(Module, "v0.0.0-00010101000000-000000000000", false)
	for _, r := range sdk.Require {
		f.AddNewRequire(r.Mod.Path, r.Mod.Version, true)
	}
	if err := f.AddReplace(Module, "", d.SDK, ""); err != nil {
		return nil, err
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return nil, err
	}
	head := []byte("// Scaffolded by rspp-node new: builds against the RSPP checkout in the\n// replace below, offline. The requirements are the checkout's own.\n")
	return append(head, bytes.TrimLeft(out, "\n")...), nil
}

// goSum copies the checkout's go.sum: the sums of every module goMod lists.
func goSum(d data) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.SDK, "go.sum"))
}
