package wsload

import "testing"

// decodeServer never panics, and what it accepts has the fields its type
// needs: the client's bookkeeping relies on a turn id being there.
func FuzzDecodeServer(f *testing.F) {
	for _, s := range []string{
		`{"type":"ready","session":"s","protocol":1}`,
		`{"type":"turn","turn":"t1","state":"abort","reason":"barge_in","latency_ms":12}`,
		`{"type":"audio_start","turn":"t1"}`, `{"type":"fence","turn":"t1","reason":"barge_in"}`,
		`{"type":"transcript","turn":"t1","text":"hi","final":true}`, `{"type":"error","reason":"x"}`,
		`{"type":`, `[]`, `{"type":"turn","turn":"","state":"open"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeServer(b)
		if err != nil {
			return
		}
		switch m.Type {
		case TypeTurn, TypeTranscript, TypeReply, TypeAudioStart, TypeFence:
			if m.Turn == "" {
				t.Fatalf("accepted %s without turn: %q", m.Type, b)
			}
		case TypeReady:
			if m.Session == "" || m.Protocol != ProtocolVersion {
				t.Fatalf("accepted ready %+v", m)
			}
		case TypeError:
		default:
			t.Fatalf("accepted type %q", m.Type)
		}
	})
}
