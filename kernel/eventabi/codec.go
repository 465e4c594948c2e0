package eventabi

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// decodeJSON parses one event from its JSON form (scripted traces, golden
// files, replay) and returns it normalized and validated. Oversized input,
// unknown fields and trailing data are rejected with a typed error.
func decodeJSON(b []byte, lim Limits) (Event, error) {
	if lim == (Limits{}) {
		lim = DefaultLimits
	}
	max := lim.MaxPCMBytes*2 + lim.MaxTextBytes*6 + 64<<10 // base64 and escaping headroom
	if len(b) > max {
		return Event{}, &ValidationError{Kind: ErrOversized, Field: "event", Msg: fmt.Sprintf("encoded event is %d bytes", len(b))}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ev Event
	if err := dec.Decode(&ev); err != nil {
		return Event{}, &ValidationError{Kind: ErrInvalidEvent, Field: "event", Msg: err.Error()}
	}
	if dec.More() {
		return Event{}, &ValidationError{Kind: ErrInvalidEvent, Field: "event", Msg: "trailing data"}
	}
	Normalize(&ev)
	if err := Validate(&ev, lim); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// encodeJSON is the inverse of DecodeJSON.
func encodeJSON(ev *Event) ([]byte, error) { return json.Marshal(ev) }
