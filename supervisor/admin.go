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
	Pools   []PoolStatus    `json:"pools,omitempty"` // status
	Plugins []int           `json:"plugins,omitempty"`
	Upgrade *UpgradeResult  `json:"upgrade,omitempty"`
	Reload  []UpgradeResult `json:"reload,omitempty"`
}

// AdminServer serves the admin API on a unix socket.
type AdminServer struct {
	rt   *Runtime
	ln   net.Listener
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

// ServeAdmin listens on path. A socket left by a dead runtime is replaced;
// one a live runtime answers on is an error.
func ServeAdmin(rt *Runtime, path string) (*AdminServer, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return nil, fmt.Errorf("admin socket %s: another runtime is serving on it", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	_ = os.Chmod(path, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	a := &AdminServer{rt: rt, ln: ln, path: path, ctx: ctx, stop: cancel}
	a.wg.Add(1)
	go a.accept()
	return a, nil
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
