package speechtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Invoke runs one invocation of n in memory (externalnode.NewTestCall, no
// process boundary): inputs are fed and the input channel closed, and the
// emitted events are returned in order.
func Invoke(ctx context.Context, n externalnode.Node, inputs []eventabi.Event) ([]eventabi.Event, error) {
	in := make(chan eventabi.Event, len(inputs))
	for _, ev := range inputs {
		in <- ev
	}
	close(in)
	var (
		mu  sync.Mutex
		out []eventabi.Event
	)
	call := externalnode.NewTestCall("inv-1", "sess-1", "turn-1", "node-1", in, func(ev eventabi.Event) error {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, ev)
		return nil
	})
	err := n.Invoke(ctx, call)
	mu.Lock()
	defer mu.Unlock()
	return out, err
}

// AudioEvents wraps PCM frames as audio.frame events (16 kHz mono).
func AudioEvents(frames [][]byte) []eventabi.Event {
	evs := make([]eventabi.Event, len(frames))
	for i, f := range frames {
		evs[i] = eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: f, SampleRate: 16000, Channels: 1}}
	}
	return evs
}

// ChildPIDs lists the live (or unreaped) child processes of this process,
// for tests asserting that a node left none behind. Linux only (it reads
// /proc/self/task/*/children); it returns nil elsewhere.
func ChildPIDs() []int {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
