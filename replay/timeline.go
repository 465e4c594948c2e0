// Package replay reads a recorded timeline (JSON Lines, one
// kernel.TimelineRecord per line) and works on its evidence: Check
// verifies OR-02 completeness (every accepted turn has its
// replay-critical evidence), Resimulate rebuilds every session's kernel
// from its recorded inputs and compares the records it emits with the
// recorded ones byte for byte, and Playback runs the recorded traffic
// through the real runner with each provider replaced by its recorded
// outputs.
//
// It imports kernel/..., externalnode and the supervisor (its Runtime,
// config and session driver); no transport and no provider.
package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rspp/rspp/kernel"
)

// ErrBadTimeline: a line of the timeline is not a record.
var ErrBadTimeline = errors.New("bad timeline")

// Line is one record with the exact bytes it was recorded as.
type Line struct {
	No  int // 1-based line number in the file
	Raw []byte
	Rec kernel.TimelineRecord
}

// Session is one session's part of the timeline, in recorded order.
type Session struct {
	ID    string
	Lines []Line
}

// Timeline is a parsed timeline file.
type Timeline struct {
	Path     string
	Header   *kernel.TimelineRecord // timeline_header, if the file has one
	Sessions []*Session             // in order of first appearance
	// Other are records of no session (writer markers such as
	// timeline_overflow).
	Other []Line
}

// Load reads and parses a timeline file.
func Load(path string) (*Timeline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTimeline, err)
	}
	defer f.Close()
	tl, err := Parse(f)
	if tl != nil {
		tl.Path = path
	}
	if err != nil {
		return tl, fmt.Errorf("%s: %w", path, err)
	}
	return tl, nil
}

// Parse reads a timeline. A line that is not a record is a typed error
// naming its line number; an empty file is not an error.
func Parse(r io.Reader) (*Timeline, error) {
	tl := &Timeline{}
	by := map[string]*Session{}
	br := bufio.NewReaderSize(r, 1<<20)
	for no := 1; ; no++ {
		raw, err := br.ReadBytes('\n')
		if len(raw) == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			return tl, fmt.Errorf("%w: line %d: %v", ErrBadTimeline, no, err)
		}
		raw = bytes.TrimRight(raw, "\n")
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var rec kernel.TimelineRecord
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if derr := dec.Decode(&rec); derr != nil {
			return tl, fmt.Errorf("%w: line %d: %v", ErrBadTimeline, no, derr)
		}
		if rec.Type == "" {
			return tl, fmt.Errorf("%w: line %d: record without a type", ErrBadTimeline, no)
		}
		ln := Line{No: no, Raw: raw, Rec: rec}
		switch {
		case rec.Type == "timeline_header":
			h := rec
			tl.Header = &h
		case rec.SessionID == "":
			tl.Other = append(tl.Other, ln)
		default:
			s := by[rec.SessionID]
			if s == nil {
				s = &Session{ID: rec.SessionID}
				by[rec.SessionID] = s
				tl.Sessions = append(tl.Sessions, s)
			}
			s.Lines = append(s.Lines, ln)
		}
		if err == io.EOF {
			break
		}
	}
	return tl, nil
}

// Inputs are the session's recorded inputs, in order.
func (s *Session) Inputs() []kernel.TimelineRecord {
	var out []kernel.TimelineRecord
	for _, l := range s.Lines {
		if l.Rec.Input != nil {
			out = append(out, l.Rec)
		}
	}
	return out
}
