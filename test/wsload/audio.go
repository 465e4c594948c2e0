package wsload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/rspp/rspp/transports/wav"
)

// DefaultVoicedDB is the level (dBFS RMS of a 20 ms frame) at or above which
// a frame counts as speech when an utterance's speech start and end are
// located. It is the runtime's default VAD threshold, so "speech start at
// the client" is the first frame the server can hear as speech.
const DefaultVoicedDB = -40

// ErrNoSpeech is an utterance whose frames are all below the voiced level.
var ErrNoSpeech = errors.New("no frame at or above the voiced level")

// Utterance is a recording the client speaks, cut into 20 ms frames, with
// the frames where speech begins and ends.
type Utterance struct {
	Name   string
	Frames [][]byte
	// FirstVoiced and LastVoiced index the first and last frame at or above
	// the voiced level: speech starts when FirstVoiced is sent and ends
	// when LastVoiced has been sent.
	FirstVoiced, LastVoiced int
}

// NewUtterance cuts 16 kHz mono s16le PCM into frames (the last padded with
// silence) and locates its speech at voicedDB.
func NewUtterance(name string, pcm []byte, voicedDB float64) (Utterance, error) {
	u := Utterance{Name: name, Frames: wav.Frames(pcm), FirstVoiced: -1, LastVoiced: -1}
	for i, f := range u.Frames {
		if LevelDB(f) >= voicedDB {
			if u.FirstVoiced < 0 {
				u.FirstVoiced = i
			}
			u.LastVoiced = i
		}
	}
	if u.FirstVoiced < 0 {
		return Utterance{}, fmt.Errorf("utterance %s: %w (%.0f dBFS)", name, ErrNoSpeech, voicedDB)
	}
	return u, nil
}

// LoadUtterance reads a 16 kHz mono s16le WAV file as an Utterance.
func LoadUtterance(path string, voicedDB float64) (Utterance, error) {
	pcm, err := wav.ReadFile(path)
	if err != nil {
		return Utterance{}, fmt.Errorf("utterance %s: %w", path, err)
	}
	return NewUtterance(path, pcm, voicedDB)
}

// LevelDB is the RMS level of s16le PCM in dBFS (-Inf for silence).
func LevelDB(pcm []byte) float64 {
	n := len(pcm) / 2
	if n == 0 {
		return math.Inf(-1)
	}
	var sum float64
	for i := 0; i+1 < len(pcm); i += 2 {
		s := float64(int16(binary.LittleEndian.Uint16(pcm[i:])))
		sum += s * s
	}
	return 10 * math.Log10(sum/float64(n)/(32768*32768))
}
