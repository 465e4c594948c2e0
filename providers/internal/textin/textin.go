// Package textin gathers the text input of one invocation for the text-fed
// providers (the rules LLM stand-in, the espeak TTS). It reads events only;
// it never emits or blocks past the invocation's context.
package textin

import (
	"context"
	"strings"

	"github.com/rspp/rspp/kernel/eventabi"
)

// Collect reads in until it is closed and returns the input text: the finals
// (transcript.final, text.final) joined by single spaces when there are any,
// else the text.delta chunks concatenated. Other events are ignored. It
// returns ctx.Err() as soon as ctx is done.
func Collect(ctx context.Context, in <-chan eventabi.Event) (string, error) {
	var finals []string
	var deltas strings.Builder
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case ev, ok := <-in:
			if !ok {
				if len(finals) > 0 {
					return strings.Join(finals, " "), nil
				}
				return deltas.String(), nil
			}
			if ev.Text == nil {
				continue
			}
			switch ev.Type {
			case eventabi.TypeTranscriptFinal, eventabi.TypeTextFinal:
				if t := strings.TrimSpace(ev.Text.Text); t != "" {
					finals = append(finals, t)
				}
			case eventabi.TypeTextDelta:
				deltas.WriteString(ev.Text.Text)
			}
		}
	}
}
