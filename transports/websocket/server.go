// Package websocket is the WebSocket transport (PROTOCOL.md): one
// connection is one session. Binary frames carry 20 ms of 16 kHz mono
// s16le audio both ways; text frames carry JSON control. The server
// serves the browser page (package web) at / and the endpoint at /ws.
//
// It owns the wire: origin check, message size limit, ping/pong
// keepalive, idle timeout, a bounded send queue per connection, and the
// close code and reason for every kind of bad input. Bad input closes
// only its own connection. It never paces audio (the supervisor's
// playout hands it frames at real time) and never decides turns.
package websocket

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	cws "github.com/coder/websocket"

	"github.com/rspp/rspp/transports"
	"github.com/rspp/rspp/transports/websocket/web"
)

// ProtocolVersion is the version of PROTOCOL.md this server speaks.
const ProtocolVersion = 1

// Defaults of Options.
const (
	DefaultMaxMessageBytes = 16 << 10
	DefaultPingInterval    = 10 * time.Second
	DefaultPingTimeout     = 10 * time.Second
	DefaultIdleTimeout     = 30 * time.Second
	DefaultStartTimeout    = 10 * time.Second
	DefaultSendQueue       = 50 // frames: 1 s of audio
	DefaultSlowReaderGrace = 2 * time.Second
	DefaultWriteTimeout    = 5 * time.Second
)

// Options configure a Server; zero values give the defaults.
type Options struct {
	// AllowedOrigins are origin host patterns (path.Match, e.g.
	// "localhost:*") accepted besides the request's own host. Empty:
	// same host only.
	AllowedOrigins []string
	// MaxMessageBytes bounds one client message; a longer one closes the
	// connection with 1009.
	MaxMessageBytes int64
	// PingInterval is how often the server pings; a pong missing for
	// PingTimeout closes the connection as lost.
	PingInterval, PingTimeout time.Duration
	// IdleTimeout closes a connection with 1001 when no message came from
	// the client for this long.
	IdleTimeout time.Duration
	// StartTimeout bounds the wait for the client's start message.
	StartTimeout time.Duration
	// SendQueue bounds queued agent audio frames per connection;
	// SlowReaderGrace is how long it may stay full before the connection
	// is closed (1008, client too slow).
	SendQueue       int
	SlowReaderGrace time.Duration
	// WriteTimeout bounds one write to the socket.
	WriteTimeout time.Duration
	// Page serves / (nil: the embedded page of package web).
	Page fs.FS
	// SessionPrefix prefixes the session ids the server makes ("ws").
	SessionPrefix string
}

func (o *Options) defaults() {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = DefaultPingTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.SendQueue <= 0 {
		o.SendQueue = DefaultSendQueue
	}
	if o.SlowReaderGrace <= 0 {
		o.SlowReaderGrace = DefaultSlowReaderGrace
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Page == nil {
		o.Page = web.Files
	}
	if o.SessionPrefix == "" {
		o.SessionPrefix = "ws"
	}
}

// Server is the WebSocket transport: an http.Handler serving the page
// and the endpoint, and a transports.Listener handing out a connection
// once its client has sent a valid start.
type Server struct {
	opts  Options
	mux   *http.ServeMux
	ready chan *Conn
	stop  chan struct{}
	once  sync.Once
	seq   atomic.Uint64

	mu    sync.Mutex
	conns map[*Conn]struct{}
	wg    sync.WaitGroup // handlers

	stats serverStats
}

type serverStats struct {
	accepted, rejected atomic.Uint64
}

// NewServer makes a server; mount it (Handler) on an http.Server and
// Accept its connections.
func NewServer(o Options) *Server {
	o.defaults()
	s := &Server{opts: o, mux: http.NewServeMux(), ready: make(chan *Conn), stop: make(chan struct{}), conns: map[*Conn]struct{}{}}
	s.mux.HandleFunc("/ws", s.serveWS)
	s.mux.Handle("/", http.FileServerFS(o.Page))
	return s
}

// ServeHTTP serves the page at / and the WebSocket endpoint at /ws.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Accept returns the next connection whose client sent a valid start.
func (s *Server) Accept(ctx context.Context) (transports.Conn, error) {
	select {
	case c := <-s.ready:
		return c, nil
	case <-s.stop:
		return nil, transports.ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops accepting, closes every open connection (1001) and waits
// for their handlers. Safe to call twice.
func (s *Server) Close() error {
	s.once.Do(func() { close(s.stop) })
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close("server shutting down")
	}
	s.wg.Wait()
	return nil
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.stop:
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	default:
	}
	ws, err := cws.Accept(w, r, &cws.AcceptOptions{OriginPatterns: s.opts.AllowedOrigins})
	if err != nil {
		// Accept has answered (403 for a foreign origin, 400 otherwise).
		s.stats.rejected.Add(1)
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	c := newConn(s, ws, fmt.Sprintf("%s-%d", s.opts.SessionPrefix, s.seq.Add(1)), remoteAddr(r))
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.start()
	select {
	case <-c.started:
		select {
		case s.ready <- c:
			s.stats.accepted.Add(1)
		case <-s.stop:
			c.Close("server shutting down")
		case <-c.done:
		}
	case <-c.done:
	case <-time.After(s.opts.StartTimeout):
		c.fail(cws.StatusPolicyViolation, "no start message within "+s.opts.StartTimeout.String(), transports.ErrBadInput)
	case <-s.stop:
		c.Close("server shutting down")
	}
	<-c.done
}

func remoteAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// errServerClosed is a connection ended by the server's shutdown.
var errServerClosed = errors.New("websocket: server closed")
