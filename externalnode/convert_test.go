package externalnode

import (
	"reflect"
	"testing"

	"github.com/rspp/rspp/kernel/eventabi"
	"google.golang.org/protobuf/proto"
)

// The writer's reused message carries each frame exactly as a fresh one
// would, whatever payload the frame before it had.
func TestReusedWireEventMatchesAFreshOne(t *testing.T) {
	base := eventabi.Event{ID: "e1", SessionID: "s", TurnID: "t", NodeID: "stt", InvocationID: "i", Sequence: 7, Epoch: 3, MonoNanos: 11, WallNanos: 12, MediaNanos: 13, SchemaVersion: 1}
	audio := base
	audio.Type, audio.Lane = eventabi.TypeAudioFrame, eventabi.LaneData
	audio.Audio = &eventabi.Audio{PCM: []byte{1, 2, 3, 4}, SampleRate: 16000, Channels: 1}
	text := base
	text.ID, text.Type = "e2", eventabi.TypeTranscriptFinal
	text.Text = &eventabi.Text{Text: "hello", Final: true}
	ctrl := base
	ctrl.ID, ctrl.Type, ctrl.Lane = "e3", eventabi.Type("control.cancel"), eventabi.LaneControl
	ctrl.Control = &eventabi.Control{Signal: "cancel", Scope: "turn", Reason: "barge_in"}
	bare := base
	bare.ID, bare.Type = "e4", eventabi.Type("marker")
	audio2 := audio
	audio2.ID, audio2.Audio = "e5", &eventabi.Audio{PCM: []byte{9, 9}, SampleRate: 8000, Channels: 2}

	var w wireEvent
	for _, ev := range []eventabi.Event{audio, text, ctrl, bare, audio2, text} {
		got, err := proto.Marshal(w.frame("inv-1", &ev))
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.Marshal(newWireFrame("inv-1", &ev))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("event %s: reused message marshals to %x, a fresh one to %x", ev.ID, got, want)
		}
		if back := fromWire(w.msg.Event); !reflect.DeepEqual(back, ev) {
			t.Errorf("event %s: round trip %+v, want %+v", ev.ID, back, ev)
		}
	}
}
