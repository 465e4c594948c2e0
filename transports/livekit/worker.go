package livekit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	cws "github.com/coder/websocket"
	"github.com/livekit/protocol/auth"
	lkp "github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"
)

// Errors of the worker connection.
var (
	// ErrUnauthorized: the server refused the worker's token (wrong API
	// key or secret).
	ErrUnauthorized = errors.New("livekit: server refused the API key/secret")
	// ErrUnreachable: the server could not be reached.
	ErrUnreachable = errors.New("livekit: server unreachable")
	// ErrProtocol: the server said something the worker protocol does not
	// allow.
	ErrProtocol = errors.New("livekit: worker protocol")
)

// workerConn is the agent worker protocol over the server's /agent
// WebSocket: protobuf WorkerMessage up, ServerMessage down.
type workerConn struct {
	ws       *cws.Conn
	workerID string
	mu       sync.Mutex // one writer at a time
}

// agentToken is the worker's own token: it may register as an agent.
func agentToken(o *Options) (string, error) {
	at := auth.NewAccessToken(o.APIKey, o.APISecret)
	at.SetVideoGrant(&auth.VideoGrant{Agent: true}).SetValidFor(24 * time.Hour)
	return at.ToJWT()
}

// dialWorker connects and registers; it returns once the server
// confirmed the registration.
func dialWorker(ctx context.Context, o *Options) (*workerConn, *lkp.ServerInfo, error) {
	tok, err := agentToken(o)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: sign token: %v", ErrConfig, err)
	}
	u := wsURL(o.URL) + "/agent?protocol=1"
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, resp, err := cws.Dial(dctx, u, &cws.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return nil, nil, fmt.Errorf("%w: %s answered %s for API key %q", ErrUnauthorized, o.URL, resp.Status, o.APIKey)
		}
		if resp != nil {
			return nil, nil, fmt.Errorf("%w: %s/agent answered %s", ErrProtocol, o.URL, resp.Status)
		}
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, o.URL, err)
	}
	ws.SetReadLimit(1 << 20)
	w := &workerConn{ws: ws}
	ns := ""
	if err := w.send(ctx, &lkp.WorkerMessage{Message: &lkp.WorkerMessage_Register{Register: &lkp.RegisterWorkerRequest{
		Type: lkp.JobType_JT_ROOM, AgentName: o.AgentName, Version: o.Version, Namespace: &ns,
		AllowedPermissions: &lkp.ParticipantPermission{CanSubscribe: true, CanPublish: true, CanPublishData: true},
	}}}); err != nil {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("%w: register: %v", ErrUnreachable, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	for {
		m, err := w.recv(rctx)
		if err != nil {
			ws.CloseNow()
			return nil, nil, fmt.Errorf("%w: no registration answer: %v", ErrProtocol, err)
		}
		if r, ok := m.Message.(*lkp.ServerMessage_Register); ok {
			w.workerID = r.Register.GetWorkerId()
			return w, r.Register.GetServerInfo(), nil
		}
	}
}

func (w *workerConn) send(ctx context.Context, m *lkp.WorkerMessage) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return w.ws.Write(wctx, cws.MessageBinary, b)
}

func (w *workerConn) recv(ctx context.Context) (*lkp.ServerMessage, error) {
	typ, b, err := w.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != cws.MessageBinary {
		return nil, fmt.Errorf("%w: text message from the server", ErrProtocol)
	}
	var m lkp.ServerMessage
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return &m, nil
}

func (w *workerConn) close() { _ = w.ws.Close(cws.StatusNormalClosure, "worker stopping") }
