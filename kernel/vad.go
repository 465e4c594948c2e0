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
	return float64(sumSquares(a.PCM[:n*2]))/float64(n) >= v.powerThreshold
}

// sumSquares is the sum of the squares of the s16le samples in pcm (even
// length). Summed as integers: each square is at most 2^30, so the sum is
// exact, the same value a float64 sum gives below 2^23 samples. It reads
// four samples at a time: it runs on every ingress frame of every session.
func sumSquares(pcm []byte) int64 {
	var sum int64
	for len(pcm) >= 8 {
		x := binary.LittleEndian.Uint64(pcm)
		s0, s1 := int64(int16(x)), int64(int16(x>>16))
		s2, s3 := int64(int16(x>>32)), int64(int16(x>>48))
		sum += s0*s0 + s1*s1 + s2*s2 + s3*s3
		pcm = pcm[8:]
	}
	for ; len(pcm) >= 2; pcm = pcm[2:] {
		s := int64(int16(binary.LittleEndian.Uint16(pcm)))
		sum += s * s
	}
	return sum
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
