package sdk

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/test/testenv"
)

// TestSDKNodesOnBothChannels: the SDKs' example echo nodes complete the
// handshake and answer a turn on the default peercred channel and with
// runtime.plugin_channel: mtls (go-plugin's AutoMTLS: the unpadded DER
// cert, the DNS:localhost SAN, the host's PEM as client CA).
func TestSDKNodesOnBothChannels(t *testing.T) {
	root := testenv.MustModuleRoot(t)
	for _, tc := range []struct{ lang, script, want string }{
		{"node", filepath.Join(root, "sdk", "node", "examples", "echo.js"), "node.js: hi"},
		{"python", filepath.Join(root, "sdk", "python", "examples", "echo.py"), "python: hi"},
	} {
		for _, ch := range []externalnode.Channel{externalnode.ChannelPeerCred, externalnode.ChannelMTLS} {
			t.Run(tc.lang+"/"+string(ch), func(t *testing.T) {
				if tc.lang == "node" {
					needNode(t, root)
				} else {
					needPython(t)
				}
				dir, err := os.MkdirTemp("", "rsm")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(dir) })
				inst, err := externalnode.Start(context.Background(), externalnode.StartConfig{
					Name: "echo-" + tc.lang, Binary: tc.script, SocketDir: dir, StartTimeout: 30 * time.Second, Channel: ch,
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(inst.Kill)
				got := make(chan eventabi.Event, 4)
				ended := make(chan error, 1)
				call, err := inst.Open(externalnode.OpenRequest{InvocationID: "i1", SessionID: "s1", TurnID: "t1", NodeID: "n1"},
					externalnode.Handler{OnEvent: func(ev eventabi.Event) { got <- ev }, OnEnd: func(err error) { ended <- err }})
				if err != nil {
					t.Fatal(err)
				}
				if err := call.Send(eventabi.Event{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: "hi"}}); err != nil {
					t.Fatal(err)
				}
				if err := call.CloseInput(); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-ended:
					if err != nil {
						t.Fatalf("ended with %v", err)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("no end")
				}
				if len(got) != 1 {
					t.Fatalf("%d outputs", len(got))
				}
				if ev := <-got; ev.Text == nil || ev.Text.Text != tc.want || ev.SessionID != "s1" {
					t.Fatalf("output %+v", ev)
				}
			})
		}
	}
}
