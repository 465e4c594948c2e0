package websocket

import (
	"testing"

	cws "github.com/coder/websocket"
)

// The client control parser never panics, names every refusal with one
// of the protocol's close codes, and accepts exactly the messages
// PROTOCOL.md defines.
func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		`{"type":"start","sample_rate":16000,"channels":1}`, `{"type":"start","sample_rate":48000,"channels":1}`,
		`{"type":"playback","turn":"t","event":"done","played_ms":20}`, `{"type":"stop"}`, `{"type":`, `[]`, `{"type":"x"}`, `null`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, started bool) {
		m, bad := parseControl(data, started)
		if bad != nil {
			switch bad.code {
			case cws.StatusPolicyViolation, cws.StatusUnsupportedData:
			default:
				t.Fatalf("close code %d for %q", bad.code, data)
			}
			if bad.reason == "" {
				t.Fatalf("no reason for %q", data)
			}
			return
		}
		switch m.Type {
		case "start":
			if started || m.SampleRate == nil || *m.SampleRate != 16000 || m.Channels == nil || *m.Channels != 1 {
				t.Fatalf("accepted bad start %q", data)
			}
		case "playback":
			if !started || m.Turn == "" {
				t.Fatalf("accepted bad playback %q", data)
			}
		case "stop":
		default:
			t.Fatalf("accepted type %q", m.Type)
		}
	})
}
