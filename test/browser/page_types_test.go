package browser

import (
	"context"
	"encoding/base64"
	"testing"
)

// pageTurn is one turn as the page's window.rsppTest.turns() reports it.
type pageTurn struct {
	Turn   string `json:"turn"`
	States []struct {
		State     string   `json:"state"`
		Reason    string   `json:"reason"`
		LatencyMS *float64 `json:"latency_ms"`
	} `json:"states"`
	Transcript       string   `json:"transcript"`
	Final            bool     `json:"final"`
	Reply            string   `json:"reply"`
	FramesIn         int      `json:"frames_in"`
	FramesAfterFence int      `json:"frames_after_fence"`
	PlayedSamples    int      `json:"played_samples"`
	PlayedChunks     []chunk  `json:"played_chunks"`
	FirstPlayedAt    *float64 `json:"first_played_at"`
	LastPlayedEnd    *float64 `json:"last_played_end"`
	SamplesAfter     int      `json:"samples_after_fence"`
	Fence            *struct {
		Reason     string   `json:"reason"`
		ReceivedAt float64  `json:"receivedAt"`
		AppliedAt  *float64 `json:"appliedAt"`
		Dropped    *int     `json:"dropped"`
	} `json:"fence"`
	Done         bool     `json:"done"`
	PCMTrimmed   bool     `json:"pcm_trimmed"`
	FirstAudioMS *float64 `json:"first_audio_ms"`
	BargeIn      *struct {
		SpeechStart    float64  `json:"speech_start"`
		ToFenceMS      float64  `json:"to_fence_ms"`
		ToLastSampleMS *float64 `json:"to_last_sample_ms"`
		PlayedBefore   bool     `json:"played_before"`
	} `json:"barge_in"`
}

// chunk is a run of samples of one turn the playback worklet handed to the
// output: at is its page time (ms, performance.now() clock), and
// afterFence how long after the fence message reached the page that was
// (null before any fence).
type chunk struct {
	Frame      int      `json:"frame"`
	N          int      `json:"n"`
	At         float64  `json:"at"`
	AfterFence *float64 `json:"after_fence_message"`
}

// pageStatus is window.rsppTest.status().
type pageStatus struct {
	Ready       bool     `json:"ready"`
	Session     string   `json:"session"`
	Errors      []string `json:"errors"`
	ContextRate float64  `json:"context_rate"`
	Closed      *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"closed"`
	Counts map[string]int `json:"counts"`
}

func pageTurns(t *testing.T, ctx context.Context) []pageTurn {
	t.Helper()
	return evaluate[[]pageTurn](t, ctx, `window.rsppTest.turns()`)
}

func pageState(t *testing.T, ctx context.Context) pageStatus {
	t.Helper()
	return evaluate[pageStatus](t, ctx, `window.rsppTest.status()`)
}

func findTurn(turns []pageTurn, id string) *pageTurn {
	for i := range turns {
		if turns[i].Turn == id {
			return &turns[i]
		}
	}
	return nil
}

// playedPCM is the 16 kHz s16le audio of turn the page handed to its output.
func playedPCM(t *testing.T, ctx context.Context, turn string) []byte {
	t.Helper()
	b64 := evaluate[string](t, ctx, sprintf(`window.rsppTest.playedPCM(%q)`, turn))
	pcm, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("played PCM of %s: %v", turn, err)
	}
	return pcm
}

// pageText is the text content of the elements matching a CSS selector,
// joined by newlines: what a person sees.
func pageText(t *testing.T, ctx context.Context, selector string) string {
	t.Helper()
	return evaluate[string](t, ctx, sprintf(`[...document.querySelectorAll(%q)].map((e) => e.textContent).join('\n')`, selector))
}
