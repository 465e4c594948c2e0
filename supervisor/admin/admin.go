// Package admin serves the runtime's admin socket (status, upgrade,
// reload: one JSON line per request) and calls it (rspp status, rspp
// upgrade). The socket file, its lock and the sweep of a dead run's live in
// the supervisor package. It imports supervisor and its rooms; nothing in
// supervisor imports it.
package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/pool"
)

// Request is one admin API call: one JSON line on the admin socket.
type Request struct {
	Op       string `json:"op"` // "status", "upgrade", "reload"
	Provider string `json:"provider,omitempty"`
	Binary   string `json:"binary,omitempty"`
}

// Response answers one Request.
type Response struct {
	OK      bool                       `json:"ok"`
	Error   string                     `json:"error,omitempty"`
	Pid     int                        `json:"pid"`             // the runtime's pid
	Pools   []pool.Status              `json:"pools,omitempty"` // status
	Plugins []int                      `json:"plugins,omitempty"`
	Upgrade *supervisor.UpgradeResult  `json:"upgrade,omitempty"`
	Reload  []supervisor.UpgradeResult `json:"reload,omitempty"`
	// Admission is capacity, load and refusals (status).
	Admission *supervisor.AdmissionStatus `json:"admission,omitempty"`
}

// Server serves the admin API on a unix socket.
type Server struct {
	rt   *supervisor.Runtime
	ln   net.Listener
	lock *supervisor.AdminLock
	path string
	wg   sync.WaitGroup
	once sync.Once
	ctx  context.Context
	stop context.CancelFunc
}

// Serve listens on path. The socket is guarded by a lock file
// (path + ".lock", flock) that the serving runtime holds for as long as it
// lives; the kernel drops the lock when the runtime dies, SIGKILL
// included. A socket whose lock is free is a dead run's and is replaced;
// one whose lock is held (or that answers) is a live runtime's: an
// supervisor.ErrAdminBusy error, and the socket is left alone.
func Serve(rt *supervisor.Runtime, path string) (*Server, error) {
	lock, err := supervisor.LockAdminSocket(path)
	if err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		lock.Release(false)
		return nil, fmt.Errorf("admin socket %s: %w", path, supervisor.ErrAdminBusy)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		lock.Release(true)
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	_ = os.Chmod(path, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	a := &Server{rt: rt, ln: ln, lock: lock, path: path, ctx: ctx, stop: cancel}
	a.wg.Add(1)
	go a.accept()
	return a, nil
}

// Path is the socket path.
func (a *Server) Path() string { return a.path }

func (a *Server) accept() {
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

func (a *Server) serveConn(c net.Conn) {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req Request
		resp := Response{Pid: os.Getpid()}
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

func (a *Server) handle(req Request, resp *Response) {
	var err error
	switch req.Op {
	case "status":
	case "upgrade":
		var res supervisor.UpgradeResult
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
func (a *Server) Close() error {
	var err error
	a.once.Do(func() {
		a.stop()
		err = a.ln.Close()
		a.wg.Wait()
		_ = os.Remove(a.path)
		a.lock.Release(true)
	})
	return err
}

// ErrRefused is an error the runtime answered an admin request with.
var ErrRefused = errors.New("runtime refused")

// Call sends one request to the runtime listening on path.
func Call(ctx context.Context, path string, req Request) (Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Response{}, fmt.Errorf("no runtime on admin socket %s: %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Response{}, err
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if !resp.OK {
		return resp, fmt.Errorf("%w: %s", ErrRefused, resp.Error)
	}
	return resp, nil
}
