package livekit

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/livekit/protocol/auth"
	lkp "github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"
)

const (
	fakeKey    = "fakekey"
	fakeSecret = "fake-secret-of-the-fake-server-0123456789"
)

// fakeAgentServer is a fake of the LiveKit server's /agent endpoint: it
// checks the worker's token, answers the registration and lets the test
// drive the rest (offers) and read what the worker sends.
type fakeAgentServer struct {
	fromWorker chan *lkp.WorkerMessage
	toWorker   chan *lkp.ServerMessage
}

func newFakeAgentServer(t *testing.T) (*fakeAgentServer, *httptest.Server) {
	f := &fakeAgentServer{fromWorker: make(chan *lkp.WorkerMessage, 64), toWorker: make(chan *lkp.ServerMessage, 64)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/agent" {
			http.NotFound(w, r)
			return
		}
		v, err := auth.ParseAPIToken(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		if _, grants, err := v.Verify(fakeSecret); err != nil || grants.Video == nil || !grants.Video.Agent {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		ws, err := cws.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		go func() {
			for {
				select {
				case m := <-f.toWorker:
					b, _ := proto.Marshal(m)
					if ws.Write(ctx, cws.MessageBinary, b) != nil {
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var m lkp.WorkerMessage
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			if _, ok := m.Message.(*lkp.WorkerMessage_Register); ok {
				f.toWorker <- &lkp.ServerMessage{Message: &lkp.ServerMessage_Register{Register: &lkp.RegisterWorkerResponse{
					WorkerId: "AW_fake", ServerInfo: &lkp.ServerInfo{Version: "fake"}}}}
			}
			f.fromWorker <- &m
		}
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

// next waits for the worker's next message of type T.
func next[T any](t *testing.T, f *fakeAgentServer) T {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-f.fromWorker:
			if v, ok := m.Message.(T); ok {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("no %T from the worker", zero)
			return zero
		}
	}
}

func offer(f *fakeAgentServer, id string) {
	f.toWorker <- &lkp.ServerMessage{Message: &lkp.ServerMessage_Availability{Availability: &lkp.AvailabilityRequest{
		Job: &lkp.Job{Id: id, Type: lkp.JobType_JT_ROOM, Room: &lkp.Room{Name: "r-" + id}}}}}
}

func TestWorkerRegistersAndAnswersOffers(t *testing.T) {
	f, srv := newFakeAgentServer(t)
	var load atomic.Uint32 // math.Float32bits
	a, err := NewAgent(context.Background(), Options{URL: srv.URL, APIKey: fakeKey, APISecret: fakeSecret, AgentName: "tester",
		LoadInterval: 50 * time.Millisecond, Load: func() float32 { return math.Float32frombits(load.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	reg := next[*lkp.WorkerMessage_Register](t, f)
	if reg.Register.AgentName != "tester" || reg.Register.Type != lkp.JobType_JT_ROOM {
		t.Fatalf("registration %v", reg.Register)
	}
	if a.WorkerID() != "AW_fake" {
		t.Fatalf("worker id %q", a.WorkerID())
	}
	offer(f, "J1")
	av := next[*lkp.WorkerMessage_Availability](t, f)
	if !av.Availability.Available || av.Availability.JobId != "J1" || av.Availability.ParticipantIdentity == "" {
		t.Fatalf("first offer: %v, want accepted with an identity", av.Availability)
	}
	// Full by the runtime's own figure: declined.
	load.Store(math.Float32bits(1))
	offer(f, "J2")
	if av := next[*lkp.WorkerMessage_Availability](t, f); av.Availability.Available {
		t.Fatalf("offer at full load accepted: %v", av.Availability)
	}
	load.Store(0)
	a.Drain()
	for {
		u := next[*lkp.WorkerMessage_UpdateWorker](t, f)
		if u.UpdateWorker.GetDraining() && u.UpdateWorker.GetStatus() == lkp.WorkerStatus_WS_FULL {
			break
		}
	}
	offer(f, "J3")
	if av := next[*lkp.WorkerMessage_Availability](t, f); av.Availability.Available {
		t.Fatalf("offer while draining accepted: %v", av.Availability)
	}
	st := a.Stats()
	if st.Offers != 3 || st.Rejected != 2 {
		t.Errorf("stats %+v: want 3 offers, 2 rejected", st)
	}
}

func TestWorkerBadSettings(t *testing.T) {
	_, srv := newFakeAgentServer(t)
	ctx := context.Background()
	_, err := NewAgent(ctx, Options{URL: srv.URL, APIKey: fakeKey, APISecret: "wrong-secret-0123456789012345678901"})
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "wrong-secret") || !strings.Contains(err.Error(), fakeKey) {
		t.Errorf("wrong secret: %v: want ErrUnauthorized naming the key, not the secret", err)
	}
	if _, err := NewAgent(ctx, Options{URL: "ws://127.0.0.1:1", APIKey: fakeKey, APISecret: fakeSecret}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("unreachable: %v", err)
	}
	for _, o := range []Options{
		{URL: "", APIKey: fakeKey, APISecret: fakeSecret},
		{URL: "ftp://x", APIKey: fakeKey, APISecret: fakeSecret},
		{URL: srv.URL, APIKey: fakeKey},
	} {
		if _, err := NewAgent(ctx, o); !errors.Is(err, ErrConfig) {
			t.Errorf("options %+v: %v, want ErrConfig", o, err)
		}
	}
}
