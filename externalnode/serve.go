package externalnode

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxMessageBytes bounds one gRPC message in either direction. A 20 ms frame
// is 640 bytes; anything near this limit is a bug or an attack.
const MaxMessageBytes = 1 << 20

// Serve runs n as a plugin: it sets the process's garbage-collector policy
// (gc.go), performs the go-plugin handshake on stdout and serves until the
// host goes away. Call it from the node binary's main;
// it does not return in normal operation.
func Serve(n Node) {
	info := n.Info()
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       info.Name,
		Output:     os.Stderr,
		Level:      hclog.Info,
		JSONFormat: true, // the host parses plugin logs as JSON
	})
	gc, err := gcPolicyFrom(os.Getenv)
	if err != nil {
		logger.Warn("garbage collector", "error", err)
	}
	gc.apply()
	peer, err := servePeerCheck(func(err error) { logger.Warn("connection refused", "error", err) })
	if err != nil {
		logger.Error("cannot serve", "error", err)
		os.Exit(1)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{pluginName: &grpcPlugin{impl: n}},
		Logger:          logger,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes))
			if peer != nil {
				opts = append(opts, grpc.Creds(peer))
			}
			return grpc.NewServer(opts...)
		},
	})
}

// toStatus converts an author error to a gRPC status, once, at the boundary.
func toStatus(err error) error {
	return status.Error(codes.InvalidArgument, err.Error())
}

// ConfigError is a node refusing its configuration block (Configure
// answered InvalidArgument): a configuration error of the runtime, which
// exits 2 as for any bad config. Msg is the node's own message (the SDKs
// name the key).
type ConfigError struct {
	Instance string // e.g. "tts/espeak#1"
	Msg      string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("node %s refused its config block: %s", e.Instance, e.Msg)
}

// configureError converts Configure's gRPC error, once, at the boundary:
// InvalidArgument is the node's verdict on its config; anything else (a
// dead or hung plugin) stays a transport error.
func configureError(instance string, err error) error {
	if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument {
		return &ConfigError{Instance: instance, Msg: st.Message()}
	}
	return fmt.Errorf("configure %s: %w", instance, err)
}
