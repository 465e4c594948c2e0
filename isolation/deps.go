package isolation

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// What a plugin needs to run, found without running anything of it (no
// ldd, which would execute the binary's own loader): for an ELF binary its
// program interpreter (PT_INTERP) and the DT_NEEDED closure of its shared
// libraries, resolved the way the dynamic loader does (DT_RPATH/RUNPATH,
// then /etc/ld.so.cache, then the default directories); for a "#!" script
// the interpreter's needs, with "/usr/bin/env NAME" resolved through PATH.
// A sealed sandbox holds exactly these files at their own paths.

// maxScriptDepth bounds "#!" interpreters that are scripts themselves.
const maxScriptDepth = 4

// ldCache is the path of the dynamic loader's cache; it is part of what a
// dynamically linked binary needs (the loader reads it to find libraries).
const ldCache = "/etc/ld.so.cache"

// defaultLibDirs are searched when a library is in neither RUNPATH nor the
// cache (the loader's built-in trusted directories on Debian-like systems).
var defaultLibDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// ExecNeeds returns the files a plugin at path needs to be exec'd: path
// itself, its interpreter(s) and shared libraries, and the loader cache
// when anything is dynamically linked. pathEnv is the PATH the plugin's
// environment gives "/usr/bin/env" ("" for the loader's default).
func ExecNeeds(path, pathEnv string) ([]string, error) {
	d := depWalker{seen: map[string]bool{}, pathEnv: pathEnv}
	if err := d.file(path, 0); err != nil {
		return nil, err
	}
	return d.out, nil
}

type depWalker struct {
	seen    map[string]bool
	out     []string
	pathEnv string
	dynamic bool
}

func (d *depWalker) add(p string) bool {
	if d.seen[p] {
		return false
	}
	d.seen[p] = true
	d.out = append(d.out, p)
	return true
}

func (d *depWalker) file(path string, depth int) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%w: %q is not an absolute path", ErrSandboxSetup, path)
	}
	if !d.add(path) {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSandboxSetup, err)
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := f.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("#!")):
		if depth >= maxScriptDepth {
			return fmt.Errorf("%w: %s: interpreter nesting deeper than %d", ErrSandboxSetup, path, maxScriptDepth)
		}
		interp, arg, err := parseShebang(head)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrSandboxSetup, path, err)
		}
		if err := d.file(interp, depth+1); err != nil {
			return err
		}
		if filepath.Base(interp) == "env" {
			if prog := envProgram(arg); prog != "" {
				found, err := lookPath(prog, d.pathEnv)
				if err != nil {
					return fmt.Errorf("%w: %s: %s: %v", ErrSandboxSetup, path, interp, err)
				}
				return d.file(found, depth+1)
			}
		}
		return nil
	case bytes.HasPrefix(head, []byte(elf.ELFMAG)):
		return d.elf(path)
	}
	return fmt.Errorf("%w: %s is neither an ELF binary nor a #! script", ErrSandboxSetup, path)
}

// parseShebang splits a "#!" line the way the kernel does: the interpreter
// path, then everything after it (one optional argument).
func parseShebang(head []byte) (interp, arg string, err error) {
	line := head[2:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	} else if len(head) == 256 {
		return "", "", fmt.Errorf("#! line longer than 254 bytes")
	}
	s := strings.TrimSpace(string(line))
	interp, arg, _ = strings.Cut(s, " ")
	interp, arg = strings.TrimSpace(interp), strings.TrimSpace(arg)
	if interp == "" {
		return "", "", fmt.Errorf("empty #! line")
	}
	if !filepath.IsAbs(interp) {
		return "", "", fmt.Errorf("#! interpreter %q is not an absolute path", interp)
	}
	return interp, arg, nil
}

// envProgram is the program "/usr/bin/env ARG" runs: the first word of
// ARG that is neither an option nor a VAR=value assignment ("-S node
// --flag" runs node).
func envProgram(arg string) string {
	for _, w := range strings.Fields(arg) {
		if strings.HasPrefix(w, "-") || strings.Contains(w, "=") {
			continue
		}
		return w
	}
	return ""
}

// lookPath resolves prog through pathEnv as execvp does; an empty PATH is
// glibc's default "/bin:/usr/bin".
func lookPath(prog, pathEnv string) (string, error) {
	if strings.Contains(prog, "/") {
		return prog, nil
	}
	if pathEnv == "" {
		pathEnv = "/bin:/usr/bin"
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, prog)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in PATH %q", prog, pathEnv)
}

func (d *depWalker) elf(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSandboxSetup, path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return fmt.Errorf("%w: %s: PT_INTERP: %v", ErrSandboxSetup, path, err)
		}
		interp := string(bytes.TrimRight(b, "\x00"))
		d.dynamic = true
		if err := d.file(interp, maxScriptDepth); err != nil {
			return err
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil || len(needed) == 0 {
		return nil // static (or no dynamic section)
	}
	if d.dynamic && !d.seen[ldCache] {
		if _, err := os.Stat(ldCache); err == nil {
			d.add(ldCache)
		}
	}
	var search []string
	for _, tag := range []elf.DynTag{elf.DT_RPATH, elf.DT_RUNPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			for _, dir := range strings.Split(v, ":") {
				dir = strings.ReplaceAll(dir, "$ORIGIN", filepath.Dir(path))
				dir = strings.ReplaceAll(dir, "${ORIGIN}", filepath.Dir(path))
				if filepath.IsAbs(dir) {
					search = append(search, dir)
				}
			}
		}
	}
	for _, lib := range needed {
		p, err := resolveLib(lib, search, f.Class, f.Machine)
		if err != nil {
			return fmt.Errorf("%w: %s needs %s: %v", ErrSandboxSetup, path, lib, err)
		}
		if !d.add(p) {
			continue
		}
		if err := d.elf(p); err != nil {
			return err
		}
	}
	return nil
}

// resolveLib finds a DT_NEEDED name: a name with a slash is a path; else
// the binary's RPATH/RUNPATH, the loader cache, the default directories,
// keeping only files of the binary's class and machine.
func resolveLib(name string, search []string, class elf.Class, machine elf.Machine) (string, error) {
	fits := func(p string) bool {
		f, err := elf.Open(p)
		if err != nil {
			return false
		}
		defer f.Close()
		return f.Class == class && f.Machine == machine
	}
	if strings.Contains(name, "/") {
		if fits(name) {
			return name, nil
		}
		return "", fmt.Errorf("not found")
	}
	for _, dir := range search {
		if p := filepath.Join(dir, name); fits(p) {
			return p, nil
		}
	}
	for _, p := range loaderCache()[name] {
		if fits(p) {
			return p, nil
		}
	}
	for _, dir := range defaultLibDirs {
		if p := filepath.Join(dir, name); fits(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("not in RUNPATH, %s or %v", ldCache, defaultLibDirs)
}

var (
	cacheOnce sync.Once
	cacheMap  map[string][]string
)

// loaderCache reads /etc/ld.so.cache once: library name -> paths, in the
// cache's (priority) order. An unreadable cache is empty: the default
// directories still apply.
func loaderCache() map[string][]string {
	cacheOnce.Do(func() {
		b, err := os.ReadFile(ldCache)
		if err == nil {
			cacheMap = parseLoaderCache(b)
		}
		if cacheMap == nil {
			cacheMap = map[string][]string{}
		}
	})
	return cacheMap
}

// parseLoaderCache reads glibc's "glibc-ld.so.cache1.1" format, alone or
// after the old "ld.so-1.7.0" table. It returns nil for anything else.
func parseLoaderCache(b []byte) map[string][]string {
	const (
		oldMagic = "ld.so-1.7.0"
		newMagic = "glibc-ld.so.cache1.1"
		newHdr   = 48
		newEntry = 24
	)
	base := 0
	if bytes.HasPrefix(b, []byte(oldMagic)) {
		if len(b) < 16 {
			return nil
		}
		n := int(binary.LittleEndian.Uint32(b[12:16]))
		base = 16 + n*12
		base = (base + 7) &^ 7
	}
	if base+newHdr > len(b) || !bytes.HasPrefix(b[base:], []byte(newMagic)) {
		return nil
	}
	le := binary.LittleEndian
	nlibs := int(le.Uint32(b[base+20:]))
	out := map[string][]string{}
	cstr := func(off uint32) string {
		o := base + int(off)
		if o < 0 || o >= len(b) {
			return ""
		}
		end := bytes.IndexByte(b[o:], 0)
		if end < 0 {
			return ""
		}
		return string(b[o : o+end])
	}
	for i := 0; i < nlibs; i++ {
		e := base + newHdr + i*newEntry
		if e+newEntry > len(b) {
			break
		}
		key, val := cstr(le.Uint32(b[e+4:])), cstr(le.Uint32(b[e+8:]))
		if key != "" && filepath.IsAbs(val) {
			out[key] = append(out[key], val)
		}
	}
	return out
}
