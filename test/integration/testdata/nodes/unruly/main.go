// Command unruly is a third-party node built outside the rspp repository
// against the public SDK, for containment tests. Its kind is its first
// argument. For sessions whose id ends in the configured suffix it
// misbehaves as configured; for every other session it is honest.
//
//	stall: never reads its input, waits for cancel (a node that stopped reading)
//	flood: emits 60 KiB text events as fast as it can for 30 s, ignoring
//	       errors and cancel (a hostile node)
//	chatty (llm): on its input's end, bursts 300 text deltas, then a final
//	slow (tts): takes one input every 20 ms, one audio frame out for each
//
// Honest behaviour by kind: stt reads its input to the end or for one
// second of audio (it endpoints by itself), then emits the transcript
// "what time is it"; llm reads to the end, then replies "it is time to
// test".
package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

type node struct {
	kind   string
	window int
	mode   string
	suffix string
}

func (n *node) Info() externalnode.Info {
	info := externalnode.Info{Name: "unruly", Kind: n.kind, Version: "0.1.0", InputWindow: n.window}
	switch n.kind {
	case "stt":
		info.Accepts = []eventabi.Type{eventabi.TypeAudioFrame}
		info.Emits = []eventabi.Type{eventabi.TypeTranscriptFinal}
	case "llm":
		info.Accepts = []eventabi.Type{eventabi.TypeTranscriptFinal}
		info.Emits = []eventabi.Type{eventabi.TypeTextDelta, eventabi.TypeTextFinal}
	case "tts":
		info.Accepts = []eventabi.Type{eventabi.TypeTextDelta, eventabi.TypeTextFinal}
		info.Emits = []eventabi.Type{eventabi.TypeAudioFrame}
	}
	return info
}

func (n *node) Configure(_ context.Context, cfg externalnode.Config) error {
	var c struct {
		Mode          string `json:"mode"`
		SessionSuffix string `json:"session_suffix"`
	}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	n.mode, n.suffix = c.Mode, c.SessionSuffix
	return nil
}

func (n *node) Invoke(ctx context.Context, call *externalnode.Call) error {
	if n.suffix != "" && strings.HasSuffix(call.SessionID, n.suffix) {
		switch n.mode {
		case "stall":
			<-ctx.Done()
			return ctx.Err()
		case "flood":
			big := strings.Repeat("x", 60<<10)
			for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
				_ = call.EmitText(eventabi.TypeTextDelta, big, false)
			}
			return nil
		}
	}
	if n.mode == "slow" {
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case _, ok := <-call.Inputs():
				if !ok {
					return nil
				}
				time.Sleep(20 * time.Millisecond)
				if err := call.EmitAudio(make([]byte, 640), 16000, 1); err != nil {
					return err
				}
			}
		}
	}
	for frames := 0; ; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-call.Inputs():
			if ok && (n.kind != "stt" || frames < 50) {
				frames++
				continue
			}
			if n.kind == "stt" {
				return call.EmitText(eventabi.TypeTranscriptFinal, "what time is it", true)
			}
			if n.mode == "chatty" {
				for range 300 {
					if err := call.EmitText(eventabi.TypeTextDelta, "w ", false); err != nil {
						return err
					}
				}
			}
			return call.EmitText(eventabi.TypeTextFinal, "it is time to test", true)
		}
	}
}

// usage: unruly [KIND [INPUT_WINDOW]]
func main() {
	n := &node{kind: "custom"}
	if len(os.Args) > 1 {
		n.kind = os.Args[1]
	}
	if len(os.Args) > 2 {
		n.window, _ = strconv.Atoi(os.Args[2])
	}
	externalnode.Serve(n)
}
