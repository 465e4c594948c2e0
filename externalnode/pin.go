package externalnode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-plugin/runner"
	"golang.org/x/sys/unix"
)

// The go-plugin handshake line is the plugin's first stdout line:
//
//	CORE-VERSION|APP-VERSION|NETWORK|ADDRESS|PROTOCOL|SERVER-CERT
//
// go-plugin dials whatever NETWORK|ADDRESS says. Left alone, a plugin
// (even one in a sandbox with no network) could make the supervisor
// connect to any TCP address or any unix socket on the host and stream
// every session event there. handshakePin holds one instance to the socket
// directory go-plugin made for it (PLUGIN_UNIX_SOCKET_DIR):
//
//   - the handshake line is checked before go-plugin reads it; a line that
//     names anything but a unix socket directly inside that directory is
//     never forwarded, the plugin is killed and the start fails with a
//     ProtocolError naming the address;
//   - the gRPC dialer replaces go-plugin's (user dial options come after
//     its own, so ours wins): it dials only the checked path, checks it
//     again, and after connecting checks the listener with SO_PEERCRED:
//     it must be the plugin process or a descendant of it (a sandboxed
//     plugin in a PID namespace is still seen by its host pid), running
//     as the uid the socket directory belongs to.
type handshakePin struct {
	name string

	mu      sync.Mutex
	dir     string        // the instance's own socket dir, clean
	uid     uint32        // owner of dir: the only uid that may serve the socket
	inner   runner.Runner // the real runner, for its pid and to kill it
	path    string        // socket path accepted from the handshake line
	err     error         // first refusal, or the interrupt
	aborted bool          // the start's context ended first
	remove  sync.Once
}

// maxHandshakeLine bounds the first stdout line (it carries a base64 DER
// certificate, about 700 bytes).
const maxHandshakeLine = 64 << 10

func newHandshakePin(name string) *handshakePin { return &handshakePin{name: name} }

// absDir makes a relative socket parent absolute: the plugin (maybe in a
// sandbox with another working dir) must be told an absolute path, and
// only an absolute one is accepted back.
func absDir(dir string) string {
	if dir == "" {
		return ""
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// wrap is called from the RunnerFunc with the directory go-plugin made for
// this instance.
func (p *handshakePin) wrap(r runner.Runner, dir string) runner.Runner {
	p.mu.Lock()
	p.dir = filepath.Clean(dir)
	p.inner = r
	p.mu.Unlock()
	return &pinnedRunner{Runner: r, pin: p}
}

// abortOn kills the plugin if ctx ends before Start returns: go-plugin's
// wait for the handshake line honours only StartTimeout, so a SIGTERM
// during a slow start would otherwise wait for it. Call the returned
// func when Start returns.
func (p *handshakePin) abortOn(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.aborted = true
		if p.err == nil {
			p.err = fmt.Errorf("%s: start interrupted: %w", p.name, context.Cause(ctx))
		}
		inner := p.inner
		p.mu.Unlock()
		if inner != nil {
			_ = inner.Kill(context.Background())
		}
	})
}

func (p *handshakePin) interrupted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.aborted
}

// failure is the first refusal (or the interrupt), nil if none. A start
// whose ctx has ended is reported as interrupted even if the AfterFunc
// has not run yet.
func (p *handshakePin) failure(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil && ctx.Err() != nil {
		p.err = fmt.Errorf("%s: start interrupted: %w", p.name, context.Cause(ctx))
	}
	return p.err
}

// removeDir removes the instance's socket dir (idempotent). Nothing can
// dial it once the plugin has exited or failed to start.
func (p *handshakePin) removeDir() {
	p.mu.Lock()
	dir := p.dir
	p.mu.Unlock()
	if dir == "" {
		return
	}
	p.remove.Do(func() { _ = os.RemoveAll(dir) })
}

// refuse records the first violation and kills the plugin, so that an
// instance already serving dies too (a refused re-dial).
func (p *handshakePin) refuse(network, addr, reason string) error {
	err := &ProtocolError{Msg: fmt.Sprintf("%s: handshake address %s|%s refused: %s", p.name, network, addr, reason)}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	inner := p.inner
	p.mu.Unlock()
	if inner != nil {
		_ = inner.Kill(context.Background())
	}
	return err
}

// accept checks a handshake address and records it as the one to dial.
func (p *handshakePin) accept(network, addr string) error {
	p.mu.Lock()
	dir := p.dir
	p.mu.Unlock()
	if network != "unix" {
		return p.refuse(network, addr, fmt.Sprintf("network %q: only a unix socket inside the instance's socket dir %s is accepted", network, dir))
	}
	if reason := p.inspect(addr); reason != "" {
		return p.refuse(network, addr, reason)
	}
	p.mu.Lock()
	p.path = addr
	p.mu.Unlock()
	return nil
}

// inspect says what is wrong with path as this instance's socket ("" if
// nothing). It is lexical first (so nothing outside the dir is even
// looked at), then Lstat: a socket, not a symlink, with a single link
// (a hard link could alias a socket bound elsewhere), owned by the uid
// the dir belongs to.
func (p *handshakePin) inspect(path string) string {
	p.mu.Lock()
	dir := p.dir
	p.mu.Unlock()
	if dir == "" || dir == "." {
		return "the instance has no socket dir"
	}
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return fmt.Sprintf("not a clean absolute path (must be a socket directly inside %s)", dir)
	}
	if filepath.Dir(path) != dir {
		return fmt.Sprintf("outside the instance's socket dir %s", dir)
	}
	dfi, err := os.Lstat(dir)
	if err != nil || !dfi.IsDir() {
		return fmt.Sprintf("socket dir %s is not a directory", dir)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Sprintf("no such socket: %v", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Sprintf("not a unix socket (mode %s)", fi.Mode().Type())
	}
	dst, ok1 := dfi.Sys().(*syscall.Stat_t)
	st, ok2 := fi.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return "cannot read the socket's owner"
	}
	if st.Nlink != 1 {
		return fmt.Sprintf("socket has %d links (a hard link may alias a socket bound elsewhere)", st.Nlink)
	}
	if st.Uid != dst.Uid {
		return fmt.Sprintf("socket owned by uid %d, the socket dir by uid %d", st.Uid, dst.Uid)
	}
	p.mu.Lock()
	p.uid = dst.Uid
	p.mu.Unlock()
	return ""
}

// dial is the gRPC context dialer: it connects only to the accepted path
// and only to a listener run by the plugin.
func (p *handshakePin) dial(ctx context.Context, _ string) (net.Conn, error) {
	p.mu.Lock()
	path, inner := p.path, p.inner
	p.mu.Unlock()
	if path == "" || inner == nil {
		return nil, errors.New("externalnode: no accepted handshake address to dial")
	}
	if reason := p.inspect(path); reason != "" {
		return nil, p.refuse("unix", path, reason)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	cred, err := peerCred(conn)
	if err != nil {
		_ = conn.Close()
		return nil, p.refuse("unix", path, fmt.Sprintf("reading SO_PEERCRED: %v", err))
	}
	p.mu.Lock()
	uid := p.uid
	p.mu.Unlock()
	root, _ := strconv.Atoi(inner.ID())
	switch {
	case cred.Uid != uid:
		_ = conn.Close()
		return nil, p.refuse("unix", path, fmt.Sprintf("listener runs as uid %d, want uid %d", cred.Uid, uid))
	case root <= 0 || !isSelfOrDescendant(int(cred.Pid), root):
		_ = conn.Close()
		return nil, p.refuse("unix", path, fmt.Sprintf("listener is pid %d, not the plugin (pid %d) or a descendant", cred.Pid, root))
	}
	return conn, nil
}

func peerCred(conn net.Conn) (*unix.Ucred, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("not a unix connection: %T", conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// isSelfOrDescendant walks pid's parent chain (host pids, as /proc of the
// supervisor's namespace shows them) looking for root.
func isSelfOrDescendant(pid, root int) bool {
	for range 4096 { // a bound against a cycle from pid reuse mid-walk
		if pid == root {
			return true
		}
		if pid <= 1 {
			return false
		}
		ppid, err := parentPid(pid)
		if err != nil {
			return false
		}
		pid = ppid
	}
	return false
}

// parentPid reads field 4 of /proc/PID/stat. The command name (field 2)
// is in parentheses and may itself hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parentPid(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[1])
}

// pinnedRunner shows go-plugin the plugin's stdout only after its
// handshake line passed the pin, and removes the socket dir when the
// plugin exits.
type pinnedRunner struct {
	runner.Runner
	pin    *handshakePin
	once   sync.Once
	stdout io.ReadCloser
}

func (r *pinnedRunner) Stdout() io.ReadCloser {
	r.once.Do(func() {
		inner := r.Runner.Stdout()
		r.stdout = &handshakeReader{inner: inner, br: bufio.NewReaderSize(inner, maxHandshakeLine), r: r}
	})
	return r.stdout
}

// Start starts the plugin unless the start was interrupted; an interrupt
// that raced the fork kills it right after.
func (r *pinnedRunner) Start(ctx context.Context) error {
	if r.pin.interrupted() {
		return r.pin.failure(ctx)
	}
	err := r.Runner.Start(ctx)
	if err == nil && r.pin.interrupted() {
		_ = r.Runner.Kill(context.Background())
	}
	return err
}

func (r *pinnedRunner) Wait(ctx context.Context) error {
	err := r.Runner.Wait(ctx)
	r.pin.removeDir()
	return err
}

// handshakeReader holds back the first line until it is checked. A
// refused line is never forwarded: go-plugin then sees a plugin that
// printed nothing, and Start reports the refusal.
type handshakeReader struct {
	inner   io.ReadCloser
	br      *bufio.Reader
	r       *pinnedRunner
	once    sync.Once
	pending []byte
	refused bool
}

func (h *handshakeReader) Read(b []byte) (int, error) {
	h.once.Do(h.first)
	if h.refused {
		return 0, io.EOF
	}
	if len(h.pending) > 0 {
		n := copy(b, h.pending)
		h.pending = h.pending[n:]
		return n, nil
	}
	return h.br.Read(b)
}

func (h *handshakeReader) Close() error { return h.inner.Close() }

func (h *handshakeReader) first() {
	line, err := h.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		h.refused = true
		_ = h.r.pin.refuse("?", "?", fmt.Sprintf("handshake line longer than %d bytes", maxHandshakeLine))
		return
	}
	h.pending = append([]byte(nil), line...)
	// Parse as go-plugin does. A line it would refuse anyway (too few
	// fields) is forwarded so that its own message reaches the log.
	parts := strings.Split(strings.TrimSpace(string(line)), "|")
	if len(parts) < 4 {
		return
	}
	network, addr, err := h.r.Runner.PluginToHost(parts[2], parts[3])
	if err != nil {
		return // go-plugin calls it again and fails the same way, without dialing
	}
	if h.r.pin.accept(network, addr) != nil {
		h.refused = true
		h.pending = nil
	}
}
