package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/rspp/rspp/externalnode"
)

// PluginEnv turns the driver binary (or the test binary) into one of its
// own plugin processes: the driver re-executes itself with it set, so the
// benchmark needs no separately built plugin binaries.
const PluginEnv = "RSPP_BENCH_PLUGIN"

// Values of PluginEnv.
const (
	pluginEchoNode = "echo-node" // externalnode.Serve of an echo Node: the real path
	pluginBareGRPC = "bare-grpc" // go-plugin + one bidi gRPC echo stream, no RSPP layers
	pluginRawUnix  = "raw-unix"  // echo on an inherited unix socket: the floor
	pluginFlood    = "flood"     // emits 60 KiB events as fast as it can
)

// WindowEnv sets the echo node's input window (flow-control variants).
const WindowEnv = "RSPP_BENCH_WINDOW"

// rawUnixFD is the descriptor of the socket the raw-unix plugin inherits
// (ExtraFiles[0] of the parent's exec.Cmd).
const rawUnixFD = 3

// ServePluginIfAsked serves the plugin PluginEnv names and exits the process.
// It returns at once when PluginEnv is unset. Call it first in main (and in
// TestMain) so that a re-executed binary never runs the driver.
func ServePluginIfAsked() {
	kind := os.Getenv(PluginEnv)
	if kind == "" {
		return
	}
	var err error
	switch kind {
	case pluginEchoNode:
		w, _ := strconv.Atoi(os.Getenv(WindowEnv))
		externalnode.Serve(echoNode{window: w})
	case pluginFlood:
		externalnode.Serve(floodNode{})
	case pluginBareGRPC:
		serveBareGRPC()
	case pluginRawUnix:
		err = serveRawUnix()
	default:
		err = fmt.Errorf("unknown plugin %q", kind)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rspp-bench plugin %s: %v\n", kind, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// echoNode emits every input back, as a node author would write it.
type echoNode struct{ window int }

func (n echoNode) Info() externalnode.Info {
	return externalnode.Info{Name: "bench-echo", Kind: "custom", Version: "0.0.0", InputWindow: n.window}
}

func (echoNode) Configure(context.Context, externalnode.Config) error { return nil }

func (echoNode) Invoke(ctx context.Context, call *externalnode.Call) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-call.Inputs():
			if !ok {
				return nil
			}
			if err := call.Emit(ev); err != nil {
				return err
			}
		}
	}
}

// The bare echo service is declared by hand (no protoc): one bidi stream
// whose messages are wrapperspb.BytesValue, carried by grpc's default proto
// codec, the same codec the real path uses.
const (
	bareServiceName = "rsppbench.v1.Echo"
	bareEchoMethod  = "/" + bareServiceName + "/Echo"
	barePluginName  = "echo"
)

var bareEchoDesc = grpc.ServiceDesc{
	ServiceName: bareServiceName,
	HandlerType: (*any)(nil), // no typed server interface: the handler needs none
	Streams: []grpc.StreamDesc{{
		StreamName:    "Echo",
		Handler:       bareEchoHandler,
		ServerStreams: true,
		ClientStreams: true,
	}},
}

func bareEchoHandler(_ any, stream grpc.ServerStream) error {
	msg := new(wrapperspb.BytesValue)
	for {
		if err := stream.RecvMsg(msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.SendMsg(msg); err != nil {
			return err
		}
	}
}

// bareHandshake is distinct from externalnode.Handshake so neither plugin
// can be mistaken for the other.
var bareHandshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "RSPP_BENCH_BARE_PLUGIN",
	MagicCookieValue: "bench-bare-grpc-echo",
}

// bareEchoPlugin registers the echo service on the plugin side and hands
// the host the raw connection.
type bareEchoPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (bareEchoPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&bareEchoDesc, struct{}{})
	return nil
}

func (bareEchoPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

func serveBareGRPC() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: bareHandshake,
		Plugins:         plugin.PluginSet{barePluginName: bareEchoPlugin{}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn, JSONFormat: true}),
	})
}

// serveRawUnix echoes bytes on the inherited socket until the parent closes
// it. It goes through net.Conn (the netpoller) like gRPC does, so the floor
// is Go's, not a blocking read loop's.
func serveRawUnix() error {
	f := os.NewFile(rawUnixFD, "bench-socket")
	if f == nil {
		return errors.New("no inherited socket")
	}
	conn, err := net.FileConn(f)
	_ = f.Close() // FileConn duplicated it
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, 64*1024)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return nil // parent gone
			}
		}
		if err != nil {
			return nil // EOF: the parent is done
		}
	}
}
