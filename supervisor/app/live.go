package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/load"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/transports"
	"github.com/rspp/rspp/transports/websocket"
)

// DefaultMaxLiveSessions bounds concurrent live sessions of one server.
const DefaultMaxLiveSessions = 200

// ListenOptions serve the live transports (`rspp serve --listen`).
type ListenOptions struct {
	// Addr is the HTTP address of the page (/) and the WebSocket endpoint
	// (/ws), e.g. 127.0.0.1:8080.
	Addr      string
	WebSocket websocket.Options
	// MaxSessions bounds concurrent sessions; a connection past it is
	// refused (0: DefaultMaxLiveSessions).
	MaxSessions int
	// PlayoutFrames bounds each session's buffered agent audio (0:
	// DefaultPlayoutFrames).
	PlayoutFrames int
	// Listening, if set, is called with the address served.
	Listening func(addr string)
}

// ListenFromConfig is the live transports' options of a config's
// transports.websocket block (zero values: the transport's defaults).
func ListenFromConfig(ws config.WebSocket) ListenOptions {
	return ListenOptions{
		Addr:        ws.Listen,
		MaxSessions: ws.MaxSessions,
		WebSocket: websocket.Options{
			AllowedOrigins: ws.AllowedOrigins, MaxMessageBytes: int64(ws.MaxMessageBytes),
			IdleTimeout: time.Duration(ws.IdleTimeout), PingInterval: time.Duration(ws.PingInterval), SendQueue: ws.SendQueue,
		},
	}
}

// serveLive serves the page and the WebSocket endpoint on o.Addr until
// ctx ends: a session per connection, all paced by one pacer. It returns
// what the timeline says of every session.
func serveLive(ctx context.Context, rt *supervisor.Runtime, o ListenOptions, tl session.Timeline, out io.Writer) (load.Terminals, error) {
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxLiveSessions
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return load.Terminals{}, fmt.Errorf("serve --listen %s: %w", o.Addr, err)
	}
	wsrv := websocket.NewServer(o.WebSocket)
	hsrv := &http.Server{Handler: wsrv, ReadHeaderTimeout: 10 * time.Second}
	httpDone := make(chan error, 1)
	go func() { httpDone <- hsrv.Serve(ln) }()
	pacer := supervisor.NewPacer()
	tally := &liveTally{open: map[string]*tallyTurn{}}
	var next session.Timeline = tally
	if tl != nil {
		next = session.Tee{tally, tl}
	}
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, o.MaxSessions)
	)
	for {
		c, err := wsrv.Accept(ctx)
		if err != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Refuse(fmt.Errorf("%w: too many sessions (%d)", transports.ErrBadInput, o.MaxSessions))
			c.Close("too many sessions")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := rt.ServeConn(ctx, c, supervisor.ConnOptions{Pacer: pacer, PlayoutFrames: o.PlayoutFrames, Timeline: next})
			if err != nil {
				rt.Logger().Warn("live session", "session", res.SessionID, "error", err)
				return
			}
			rt.Logger().Info("live session closed", "session", res.SessionID, "reason", res.Reason, "connection", fmt.Sprint(res.ConnErr),
				"frames_out", res.Playout.Sent, "fenced_out", res.Playout.FencedOut, "playout_full", res.Playout.Full)
		}()
	}
	wg.Wait()
	_ = wsrv.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = hsrv.Shutdown(sctx)
	if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(out, "http: %v\n", err)
	}
	pacer.Close()
	return tally.terminals(), nil
}

// liveTally counts turn terminals as records stream by, keeping only the
// turns still open: a long-running server must not keep every record.
type liveTally struct {
	mu   sync.Mutex
	t    load.Terminals
	open map[string]*tallyTurn
}

type tallyTurn struct{ open, terminals int }

func (l *liveTally) Append(rec kernel.TimelineRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.t.AbortReasons == nil {
		l.t.AbortReasons = map[string]int{}
	}
	k := rec.SessionID + "/" + rec.TurnID
	get := func() *tallyTurn {
		x := l.open[k]
		if x == nil {
			x = &tallyTurn{}
			l.open[k] = x
		}
		return x
	}
	switch rec.Type {
	case "session_open":
		l.t.Sessions++
	case "session_close":
		l.t.Closed++
	case "turn_open":
		get().open++
		l.t.Opened++
	case "turn_commit":
		get().terminals++
		l.t.Committed++
	case "turn_abort":
		get().terminals++
		l.t.Aborted++
		l.t.AbortReasons[load.AbortClass(rec.Reason)]++
	case "turn_close":
		x := get()
		if x.open != 1 || x.terminals != 1 {
			l.t.Wrong = append(l.t.Wrong, fmt.Sprintf("%s: %d open, %d terminals", k, x.open, x.terminals))
		}
		delete(l.open, k)
	}
}

func (l *liveTally) terminals() load.Terminals {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.t
	for k, x := range l.open {
		if x.open > 0 {
			t.Wrong = append(t.Wrong, fmt.Sprintf("%s: never closed", k))
		}
	}
	return t
}
