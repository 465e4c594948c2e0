// Command energystt is a light speech-to-text node for load tests, built
// outside the rspp repository against the public SDK: it hears an
// utterance by its audio energy instead of decoding it, so one process
// serves many real-time sessions on a small machine. For each invocation
// it reads the turn's audio to the end and, if any frame was at or above
// threshold_db (dBFS RMS), emits the configured transcript as the final
// one; an utterance without a voiced frame gets an empty transcript.
//
// Config (all optional):
//
//	transcript: what time is it
//	threshold_db: -40
package main

import (
	"context"
	"encoding/binary"
	"math"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

type node struct {
	transcript string
	power      float64 // mean square of s16 samples at the threshold
}

func (n *node) Info() externalnode.Info {
	return externalnode.Info{Name: "energystt", Kind: "stt", Version: "0.1.0",
		Accepts: []eventabi.Type{eventabi.TypeAudioFrame},
		Emits:   []eventabi.Type{eventabi.TypeTranscriptFinal}}
}

func (n *node) Configure(_ context.Context, cfg externalnode.Config) error {
	c := struct {
		Transcript  string  `json:"transcript"`
		ThresholdDB float64 `json:"threshold_db"`
	}{Transcript: "what time is it", ThresholdDB: -40}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	amp := 32768 * math.Pow(10, c.ThresholdDB/20)
	n.transcript, n.power = c.Transcript, amp*amp
	return nil
}

func (n *node) voiced(pcm []byte) bool {
	if len(pcm) < 2 {
		return false
	}
	var sum float64
	for i := 0; i+1 < len(pcm); i += 2 {
		s := float64(int16(binary.LittleEndian.Uint16(pcm[i:])))
		sum += s * s
	}
	return sum/float64(len(pcm)/2) >= n.power
}

func (n *node) Invoke(ctx context.Context, call *externalnode.Call) error {
	heard := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-call.Inputs():
			if !ok {
				text := ""
				if heard {
					text = n.transcript
				}
				return call.EmitText(eventabi.TypeTranscriptFinal, text, true)
			}
			if ev.Audio != nil && !heard {
				heard = n.voiced(ev.Audio.PCM)
			}
		}
	}
}

func main() { externalnode.Serve(&node{}) }
