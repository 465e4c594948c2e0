package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rspp/rspp/supervisor/pool"
)

// AdminRequest is one admin API call: one JSON line on the admin socket.
type AdminRequest struct {
	Op       string `json:"op"` // "status", "upgrade", "reload"
	Provider string `json:"provider,omitempty"`
	Binary   string `json:"binary,omitempty"`
}

// AdminResponse answers one AdminRequest.
type AdminResponse struct {
	OK      bool            `json:"ok"`
	Error   string          `json:"error,omitempty"`
	Pid     int             `json:"pid"`             // the runtime's pid
	Pools   []pool.Status   `json:"pools,omitempty"` // status
	Plugins []int           `json:"plugins,omitempty"`
	Upgrade *UpgradeResult  `json:"upgrade,omitempty"`
	Reload  []UpgradeResult `json:"reload,omitempty"`
	// Admission is capacity, load and refusals (status).
	Admission *AdmissionStatus `json:"admission,omitempty"`
}

// AdminServer serves the admin API on a unix socket.
type AdminServer struct {
	rt   *Runtime
	ln   net.Listener
	lock *adminLock
	path string
	wg   sync.WaitGroup
	once sync.Once
	ctx  context.Context
	stop context.CancelFunc
}

// AdminSocketPath is where the runtime of cfg listens: runtime.admin_socket
// or <state dir>/admin.sock.
func AdminSocketPath(configured, stateRoot string) string {
	if configured != "" {
		return configured
	}
	if stateRoot == "" {
		stateRoot = filepath.Join(os.TempDir(), "rspp")
	}
	return filepath.Join(stateRoot, "admin.sock")
}

// ErrAdminBusy: a live runtime serves on the admin socket.
var ErrAdminBusy = errors.New("another runtime is serving on it")

// ServeAdmin listens on path. The socket is guarded by a lock file
// (path + ".lock", flock) that the serving runtime holds for as long as it
// lives; the kernel drops the lock when the runtime dies, SIGKILL
// included. A socket whose lock is free is a dead run's and is replaced;
// one whose lock is held (or that answers) is a live runtime's: an
// ErrAdminBusy error, and the socket is left alone.
func ServeAdmin(rt *Runtime, path string) (*AdminServer, error) {
	lock, err := lockAdmin(path)
	if err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		lock.release(false)
		return nil, fmt.Errorf("admin socket %s: %w", path, ErrAdminBusy)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		lock.release(true)
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	_ = os.Chmod(path, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	a := &AdminServer{rt: rt, ln: ln, lock: lock, path: path, ctx: ctx, stop: cancel}
	a.wg.Add(1)
	go a.accept()
	return a, nil
}

// sweepAdminSocket removes the admin socket (and its lock file) a dead
// run left at path; a live runtime's is left alone. It says whether it
// removed one.
func sweepAdminSocket(path string) bool {
	if _, err := os.Lstat(path + ".lock"); err != nil {
		if _, err := os.Lstat(path); err != nil {
			return false // nothing there
		}
	}
	lock, err := lockAdmin(path)
	if err != nil {
		return false // held: a live runtime serves there
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		lock.release(false)
		return false
	}
	_, statErr := os.Lstat(path)
	if statErr == nil {
		_ = os.Remove(path)
	}
	lock.release(true)
	return statErr == nil
}

// adminLock is the held lock file of an admin socket.
type adminLock struct {
	f    *os.File
	path string
}

// lockAdmin takes the lock file of the admin socket at sock without
// waiting.
func lockAdmin(sock string) (*adminLock, error) {
	path := sock + ".lock"
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("admin socket %s: lock: %w", sock, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("admin socket %s: %w", sock, ErrAdminBusy)
			}
			return nil, fmt.Errorf("admin socket %s: lock: %w", sock, err)
		}
		// The holder before us may have removed the file after we opened
		// it: the lock is only ours if the path still names this file.
		var held, named unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &named) == nil && held.Ino == named.Ino && held.Dev == named.Dev {
			return &adminLock{f: f, path: path}, nil
		}
		_ = f.Close()
	}
	return nil, fmt.Errorf("admin socket %s: lock file keeps changing", sock)
}

// release drops the lock, removing the lock file first if remove.
func (l *adminLock) release(remove bool) {
	if remove {
		_ = os.Remove(l.path)
	}
	_ = l.f.Close()
}

// Path is the socket path.
func (a *AdminServer) Path() string { return a.path }

func (a *AdminServer) accept() {
	defer a.wg.Done()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer c.Close()
			a.serveConn(c)
		}()
	}
}

func (a *AdminServer) serveConn(c net.Conn) {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req AdminRequest
		resp := AdminResponse{Pid: os.Getpid()}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			a.handle(req, &resp)
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

func (a *AdminServer) handle(req AdminRequest, resp *AdminResponse) {
	var err error
	switch req.Op {
	case "status":
	case "upgrade":
		var res UpgradeResult
		res, err = a.rt.Upgrade(a.ctx, req.Provider, req.Binary)
		resp.Upgrade = &res
	case "reload":
		resp.Reload, err = a.rt.Reload(a.ctx)
	default:
		err = fmt.Errorf("unknown op %q (status, upgrade, reload)", req.Op)
	}
	resp.Pools = a.rt.Status()
	adm := a.rt.Admission()
	resp.Admission = &adm
	for _, pids := range a.rt.Pids() {
		resp.Plugins = append(resp.Plugins, pids...)
	}
	if err != nil {
		resp.Error = err.Error()
		return
	}
	resp.OK = true
}

// Close stops listening, waits for open requests and removes the socket.
// Safe to call twice.
func (a *AdminServer) Close() error {
	var err error
	a.once.Do(func() {
		a.stop()
		err = a.ln.Close()
		a.wg.Wait()
		_ = os.Remove(a.path)
		a.lock.release(true)
	})
	return err
}

// ErrAdmin is an error the runtime answered an admin request with.
var ErrAdmin = errors.New("runtime refused")

// AdminCall sends one request to the runtime listening on path.
func AdminCall(ctx context.Context, path string, req AdminRequest) (AdminResponse, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return AdminResponse{}, fmt.Errorf("no runtime on admin socket %s: %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return AdminResponse{}, err
	}
	var resp AdminResponse
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return AdminResponse{}, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if !resp.OK {
		return resp, fmt.Errorf("%w: %s", ErrAdmin, resp.Error)
	}
	return resp, nil
}
