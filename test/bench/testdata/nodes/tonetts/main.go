// Command tonetts is a light text-to-speech node for capacity benchmarks,
// written against the public SDK like any third-party node: instead of
// synthesising speech it answers each reply with a fixed run of 20 ms
// frames of a tone, so one process serves many real-time sessions and the
// benchmark measures the runtime rather than a speech engine.
//
// Config (all optional):
//
//	frames: 25   # 20 ms frames per reply (default 25: half a second)
package main

import (
	"context"
	"encoding/binary"
	"math"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

type node struct {
	frames int
	pcm    []byte // one frame, shared: the SDK copies what it sends
}

func (n *node) Info() externalnode.Info {
	return externalnode.Info{Name: "tonetts", Kind: "tts", Version: "0.1.0",
		Accepts: []eventabi.Type{eventabi.TypeTextFinal},
		Emits:   []eventabi.Type{eventabi.TypeAudioFrame}}
}

func (n *node) Configure(_ context.Context, cfg externalnode.Config) error {
	c := struct {
		Frames int `json:"frames"`
	}{Frames: 25}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	n.frames = max(c.Frames, 1)
	n.pcm = make([]byte, 640)
	for i := range 320 {
		v := int16(6000 * math.Sin(2*math.Pi*440*float64(i)/16000))
		binary.LittleEndian.PutUint16(n.pcm[2*i:], uint16(v))
	}
	return nil
}

func (n *node) Invoke(ctx context.Context, call *externalnode.Call) error {
	got := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-call.Inputs():
			if ok {
				got = got || ev.Text != nil && ev.Text.Text != ""
				continue
			}
			if !got {
				return nil
			}
			for range n.frames {
				if err := call.EmitAudio(n.pcm, 16000, 1); err != nil {
					return err
				}
			}
			return nil
		}
	}
}

func main() { externalnode.Serve(&node{}) }
