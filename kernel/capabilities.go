package kernel

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Capabilities are what a provider declares it can serve (Describe). A
// plan binds a provider to a node only if they meet the node's
// Requirements; a provider that declared nothing is not checked.
type Capabilities struct {
	Declared        bool
	SampleRates     []int    // audio it takes or makes, Hz; empty: no audio
	StreamingInput  bool     // consumes input as it arrives
	StreamingOutput bool     // emits output before its input ended
	Languages       []string // BCP 47 tags; empty: any language
}

// Requirements are what a node needs of the provider bound to it (config
// requires:); zero fields need nothing.
type Requirements struct {
	SampleRate      int
	Language        string
	StreamingInput  bool
	StreamingOutput bool
}

// Zero says whether r requires nothing.
func (r Requirements) Zero() bool { return r == Requirements{} }

func (r Requirements) String() string {
	var parts []string
	if r.SampleRate > 0 {
		parts = append(parts, "sample rate "+strconv.Itoa(r.SampleRate)+" Hz")
	}
	if r.Language != "" {
		parts = append(parts, "language "+r.Language)
	}
	if r.StreamingInput {
		parts = append(parts, "streaming input")
	}
	if r.StreamingOutput {
		parts = append(parts, "streaming output")
	}
	return strings.Join(parts, ", ")
}

// Serves says why c cannot meet r (nil when it can, or when c declared
// nothing). The error names the requirement and what c offers.
func (c Capabilities) Serves(r Requirements) error {
	if !c.Declared {
		return nil
	}
	switch {
	case r.SampleRate > 0 && !slices.Contains(c.SampleRates, r.SampleRate):
		return fmt.Errorf("requires sample rate %d Hz, it serves %s", r.SampleRate, rates(c.SampleRates))
	case r.Language != "" && len(c.Languages) > 0 && !speaks(c.Languages, r.Language):
		return fmt.Errorf("requires language %s, it serves %s", r.Language, strings.Join(c.Languages, ", "))
	case r.StreamingInput && !c.StreamingInput:
		return fmt.Errorf("requires streaming input, it takes its input whole")
	case r.StreamingOutput && !c.StreamingOutput:
		return fmt.Errorf("requires streaming output, it emits only once its input ended")
	}
	return nil
}

func rates(r []int) string {
	if len(r) == 0 {
		return "no audio"
	}
	s := make([]string, len(r))
	for i, v := range r {
		s[i] = strconv.Itoa(v) + " Hz"
	}
	return strings.Join(s, ", ")
}

// speaks matches BCP 47 tags by prefix: a provider of "en" serves "en-US",
// one of "en-US" serves "en".
func speaks(langs []string, want string) bool {
	w := strings.ToLower(want)
	for _, l := range langs {
		l = strings.ToLower(l)
		if l == w || strings.HasPrefix(w, l+"-") || strings.HasPrefix(l, w+"-") {
			return true
		}
	}
	return false
}
