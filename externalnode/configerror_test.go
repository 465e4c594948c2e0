package externalnode

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Only InvalidArgument from Configure is the node's verdict on its
// config; a transport failure stays one.
func TestConfigureErrorTypesOnlyTheNodesVerdict(t *testing.T) {
	var ce *ConfigError
	err := configureError("tts/x#1", status.Error(codes.InvalidArgument, `config for node "tts": unknown key "nope"`))
	if !errors.As(err, &ce) || ce.Instance != "tts/x#1" || ce.Msg != `config for node "tts": unknown key "nope"` {
		t.Fatalf("InvalidArgument: %#v", err)
	}
	if err := configureError("tts/x#1", status.Error(codes.Unavailable, "connection refused")); errors.As(err, &ce) {
		t.Fatalf("Unavailable typed as a config error: %v", err)
	}
}
