package kernel

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// VAD defaults (VADConfig zero values).
const (
	DefaultVADThresholdDB = -40.0
	DefaultVADMinSpeech   = 60 * time.Millisecond
	DefaultVADHangover    = 300 * time.Millisecond
	maxPreRollFrames      = 512 // bound on frames held while speech is being established
)

type vadState uint8

const (
	vadIdle vadState = iota
	vadCandidate
	vadSpeaking
)

// energyVAD is a deterministic energy detector. It measures time by the
// audio's own duration (media time), so the same audio always yields the
// same decisions whatever the wall clock does.
type energyVAD struct {
	powerThreshold float64 // mean square of s16 samples at the threshold
	minSpeech      int64
	hangover       int64

	state   vadState
	voiced  int64 // voiced ns accumulated while a candidate
	silence int64 // silent ns accumulated while speaking
	preRoll []eventabi.Event
}

type vadResult struct {
	start, end bool
	preRoll    []eventabi.Event // on start: the frames that established speech, current included
}

func newEnergyVAD(c VADConfig) *energyVAD {
	if c.ThresholdDB == 0 {
		c.ThresholdDB = DefaultVADThresholdDB
	}
	if c.MinSpeech == 0 {
		c.MinSpeech = DefaultVADMinSpeech
	}
	if c.Hangover == 0 {
		c.Hangover = DefaultVADHangover
	}
	amp := 32768 * math.Pow(10, c.ThresholdDB/20)
	return &energyVAD{powerThreshold: amp * amp, minSpeech: int64(c.MinSpeech), hangover: int64(c.Hangover)}
}

// voiced reports whether the frame's RMS is at or above the threshold.
func (v *energyVAD) isVoiced(a *eventabi.Audio) bool {
	n := len(a.PCM) / 2
	if n == 0 {
		return false
	}
	// Summed as integers: each square is below 2^30, so any frame under
	// 2^23 samples sums exactly, the same value the float sum gave.
	var sum int64
	pcm := a.PCM[:n*2]
	for i := 0; i < len(pcm); i += 2 {
		s := int64(int16(binary.LittleEndian.Uint16(pcm[i:])))
		sum += s * s
	}
	return float64(sum)/float64(n) >= v.powerThreshold
}

func (v *energyVAD) push(ev eventabi.Event) vadResult {
	dur := ev.Audio.DurationNanos()
	voiced := v.isVoiced(ev.Audio)
	switch v.state {
	case vadIdle, vadCandidate:
		if !voiced {
			v.state, v.voiced, v.preRoll = vadIdle, 0, v.preRoll[:0]
			return vadResult{}
		}
		v.state = vadCandidate
		v.voiced += dur
		if len(v.preRoll) == maxPreRollFrames {
			v.preRoll = append(v.preRoll[:0], v.preRoll[1:]...)
		}
		v.preRoll = append(v.preRoll, ev)
		if v.voiced < v.minSpeech {
			return vadResult{}
		}
		frames := append([]eventabi.Event(nil), v.preRoll...)
		v.state, v.voiced, v.silence, v.preRoll = vadSpeaking, 0, 0, v.preRoll[:0]
		return vadResult{start: true, preRoll: frames}
	default: // speaking
		if voiced {
			v.silence = 0
			return vadResult{}
		}
		v.silence += dur
		if v.silence < v.hangover {
			return vadResult{}
		}
		v.state, v.silence = vadIdle, 0
		return vadResult{end: true}
	}
}
