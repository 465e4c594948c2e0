package externalnode

import rsppv1 "github.com/rspp/rspp/proto/rspp/v1"

// capsToWire is nil for a node that declared nothing.
func capsToWire(c Capabilities) *rsppv1.Capabilities {
	if !c.Declared && len(c.SampleRates) == 0 && len(c.Languages) == 0 && !c.StreamingInput && !c.StreamingOutput {
		return nil
	}
	w := &rsppv1.Capabilities{StreamingInput: c.StreamingInput, StreamingOutput: c.StreamingOutput, Languages: c.Languages}
	for _, r := range c.SampleRates {
		if r > 0 {
			w.SampleRates = append(w.SampleRates, uint32(r))
		}
	}
	return w
}

func capsFromWire(w *rsppv1.Capabilities) Capabilities {
	if w == nil {
		return Capabilities{}
	}
	c := Capabilities{Declared: true, StreamingInput: w.StreamingInput, StreamingOutput: w.StreamingOutput, Languages: w.Languages}
	for _, r := range w.SampleRates {
		c.SampleRates = append(c.SampleRates, int(r))
	}
	return c
}
