package externalnode

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// ProtocolVersion is the node protocol version negotiated in the go-plugin
// handshake. Bump it on any incompatible change to proto/rspp/v1. Version 2
// added per-invocation flow control (NodeInfo.input_window, CREDIT frames).
const ProtocolVersion = 2

// oldestProtocolVersion is the oldest version the host still completes the
// handshake with, only to refuse it with an error that says what to do
// (rather than go-plugin's bare "incompatible API version").
const oldestProtocolVersion = 1

// Handshake is shared by host and plugin. The magic cookie only keeps a node
// binary from being run by hand by mistake; it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "RSPP_NODE_PLUGIN",
	MagicCookieValue: "a3f1c0de-rspp-node-v1",
}

// pluginName is the single plugin a node binary serves.
const pluginName = "node"

// grpcPlugin adapts a Node to go-plugin. On the plugin side it registers the
// gRPC server; on the host side it hands out the raw gRPC client, which
// Instance wraps.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Node
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	rsppv1.RegisterNodeServer(s, newServer(p.impl))
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return rsppv1.NewNodeClient(c), nil
}
