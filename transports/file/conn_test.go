package file

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rspp/rspp/transports"
)

// The file as a connection: every frame of the WAV (plus trailing
// silence) in media order, then its input ends normally (Err nil).
func TestConnPlaysFileThenEnds(t *testing.T) {
	sink, err := Create(filepath.Join(t.TempDir(), "out.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	c := NewConn(transports.Route{SessionID: "f"}, Source{PCM: make([]byte, 640*10), TrailingSilence: 100 * time.Millisecond}, sink)
	if err := c.Bind(transports.Binding{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for ev := range c.Inbound() {
		if ev.MediaNanos != int64(n)*int64(20*time.Millisecond) {
			t.Fatalf("frame %d at media %d", n, ev.MediaNanos)
		}
		n++
	}
	if n != 15 || c.Err() != nil {
		t.Fatalf("%d frames, err %v", n, c.Err())
	}
	c.Close("done")
	c.Close("done")
}

// Refuse stops the input at once and Err names why.
func TestConnRefuseStopsInput(t *testing.T) {
	sink, err := Create(filepath.Join(t.TempDir(), "out.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	c := NewConn(transports.Route{SessionID: "f"}, Source{PCM: make([]byte, 640*1000), Realtime: true}, sink)
	c.Bind(transports.Binding{})
	<-c.Inbound()
	bad := errors.New("frame refused")
	c.Refuse(bad)
	for range c.Inbound() {
	}
	if !errors.Is(c.Err(), bad) {
		t.Fatalf("err %v", c.Err())
	}
	c.Close("x")
	// Never bound: Close does not wait for a reader that never started.
	NewConn(transports.Route{}, Source{}, sink).Close("x")
}
