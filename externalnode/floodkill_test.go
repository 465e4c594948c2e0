package externalnode

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// deafFloodServer is a hostile plugin written against the wire protocol,
// not the SDK: on OPEN it emits audio frames for that invocation as fast
// as the stream takes them and never stops, whatever the host cancels.
type deafFloodServer struct{ rsppv1.UnimplementedNodeServer }

func (deafFloodServer) Describe(context.Context, *rsppv1.DescribeRequest) (*rsppv1.NodeInfo, error) {
	return &rsppv1.NodeInfo{Name: "deaf-flood", Kind: "tts", Version: "6.6.6", ProtocolVersion: ProtocolVersion, InputWindow: 8}, nil
}

func (deafFloodServer) Configure(context.Context, *rsppv1.ConfigureRequest) (*rsppv1.ConfigureResponse, error) {
	return &rsppv1.ConfigureResponse{}, nil
}

func (deafFloodServer) Health(context.Context, *rsppv1.HealthRequest) (*rsppv1.HealthReply, error) {
	return &rsppv1.HealthReply{Serving: true}, nil
}

func (deafFloodServer) Control(stream rsppv1.Node_ControlServer) error {
	for {
		if _, err := stream.Recv(); err != nil { // cancels are read and ignored
			return err
		}
	}
}

func (deafFloodServer) Data(stream rsppv1.Node_DataServer) error {
	for {
		f, err := stream.Recv()
		if err != nil {
			return err
		}
		if f.Kind != rsppv1.DataFrame_KIND_OPEN {
			continue
		}
		ev := eventabi.Event{Type: eventabi.TypeAudioFrame, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
			SessionID: f.SessionId, TurnID: f.TurnId, NodeID: f.NodeId, InvocationID: f.InvocationId,
			Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}}
		out := newWireFrame(f.InvocationId, &ev)
		for {
			if err := stream.Send(out); err != nil {
				return err
			}
		}
	}
}

type deafFloodPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (deafFloodPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	rsppv1.RegisterNodeServer(s, deafFloodServer{})
	return nil
}

func (deafFloodPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("plugin side only")
}

func serveDeafFlood() {
	plugin.Serve(&plugin.ServeConfig{HandshakeConfig: Handshake, Plugins: plugin.PluginSet{pluginName: deafFloodPlugin{}},
		GRPCServer: plugin.DefaultGRPCServer})
}

// A plugin that goes on emitting after its invocation failed the output
// budget (and was cancelled) is not read until the kill grace: past
// FloodKillFrames the host stops reading it and every call on it ends
// with a FloodError, a resource limit failure naming the invocation.
func TestFloodAfterBudgetFailureStopsTheInstance(t *testing.T) {
	inst := startPlugin(t, "deafflood")
	c := openNode(t, inst, "flood", "tts", OutputBudget{EventsPerSecond: 100})
	other := openNode(t, inst, "bystander", "tts-2", OutputBudget{EventsPerSecond: 1e9, BytesPerSecond: 1 << 40, MaxBytesInFlight: 1 << 40})
	var be *BudgetError
	if err := c.wait(t); !errors.As(err, &be) || be.Budget != BudgetEventsPerSecond {
		t.Fatalf("flooding call ended with %v, want its events_per_s BudgetError", err)
	}
	select {
	case <-inst.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("instance still read after %d frames past its budget", c.BudgetRejectedFrames())
	}
	var fe *FloodError
	if err := inst.Err(); !errors.As(err, &fe) || !errors.Is(err, kernel.ErrResourceLimit) || fe.Invocation != "flood" {
		t.Fatalf("instance error = %v, want a FloodError naming invocation flood", err)
	}
	if got := c.BudgetRejectedFrames(); got != FloodKillFrames {
		t.Fatalf("%d frames read after the budget failed, want exactly %d", got, FloodKillFrames)
	}
	if err := other.wait(t); !errors.As(err, &fe) {
		t.Fatalf("the other call on the instance ended with %v, want the FloodError", err)
	}
	t.Log(inst.Err())
}
