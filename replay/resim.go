package replay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/rspp/rspp/kernel/record"
)

// SessionResim is the resimulation of one session.
type SessionResim struct {
	Session string
	// Recorded and Resimulated are the timeline hashes (sha256 over the
	// session's lifecycle, decision and marker records, one encoded line
	// each) of the recording and of the rebuilt kernel. For a session
	// whose recording stops early (downgraded to control, or cut short)
	// Recorded covers the prefix the recorded inputs determine.
	Recorded, Resimulated string
	Records               int  // records compared
	Inputs                int  // recorded inputs taken
	Complete              bool // the recording covers the whole session
	// Err: the session could not be resimulated (not recorded at level
	// full, or the kernel diverged from the recording).
	Err error
	// FirstDiff is the first record that differs (recorded vs rebuilt),
	// when the hashes differ.
	FirstDiff [2]string
}

// OK: rebuilt without divergence, hashes equal.
func (r SessionResim) OK() bool { return r.Err == nil && r.Recorded == r.Resimulated }

// Resimulate rebuilds every session of the timeline from its recorded
// inputs.
func Resimulate(tl *Timeline) []SessionResim {
	out := make([]SessionResim, 0, len(tl.Sessions))
	for _, s := range tl.Sessions {
		out = append(out, ResimulateSession(s))
	}
	return out
}

// ResimulateSession rebuilds one session and compares.
func ResimulateSession(s *Session) SessionResim {
	res := SessionResim{Session: s.ID}
	var recorded [][]byte
	for _, l := range s.Lines {
		if l.Rec.Input == nil && record.IsReplayed(l.Rec) {
			recorded = append(recorded, l.Raw)
		}
	}
	got, err := record.Resimulate(s.Inputs())
	res.Inputs, res.Complete, res.Err = got.Inputs, got.Complete, err
	if errors.Is(err, record.ErrNotRecorded) {
		res.Recorded = hashLines(recorded)
		return res
	}
	rebuilt := make([][]byte, 0, len(got.Records))
	for _, r := range got.Records {
		line, err := json.Marshal(r)
		if err != nil {
			res.Err = err
			return res
		}
		rebuilt = append(rebuilt, line)
	}
	if !got.Complete && len(rebuilt) <= len(recorded) {
		recorded = recorded[:len(rebuilt)]
	}
	res.Records = len(recorded)
	res.Recorded, res.Resimulated = hashLines(recorded), hashLines(rebuilt)
	for i := 0; i < max(len(recorded), len(rebuilt)); i++ {
		var a, b []byte
		if i < len(recorded) {
			a = recorded[i]
		}
		if i < len(rebuilt) {
			b = rebuilt[i]
		}
		if !bytes.Equal(a, b) {
			res.FirstDiff = [2]string{string(a), string(b)}
			break
		}
	}
	return res
}

func hashLines(lines [][]byte) string {
	h := sha256.New()
	for _, l := range lines {
		h.Write(l)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WriteResim prints one line per session and a total; it reports whether
// every session resimulated to its recorded hash.
func WriteResim(w io.Writer, rs []SessionResim) bool {
	ok := 0
	for _, r := range rs {
		status := "OK"
		switch {
		case r.Err != nil:
			status = "FAIL: " + r.Err.Error()
		case r.Recorded != r.Resimulated:
			status = "FAIL: hash differs"
		case !r.Complete:
			status = "OK (prefix: recording stops early)"
		}
		if r.OK() {
			ok++
		}
		fmt.Fprintf(w, "session %s: recorded %s resimulated %s records %d inputs %d %s\n", r.Session, r.Recorded, r.Resimulated, r.Records, r.Inputs, status)
		if r.FirstDiff != [2]string{} {
			fmt.Fprintf(w, "  first difference:\n    recorded    %s\n    resimulated %s\n", r.FirstDiff[0], r.FirstDiff[1])
		}
	}
	fmt.Fprintf(w, "resimulate: %d of %d sessions reproduce their recorded timeline hash\n", ok, len(rs))
	return ok == len(rs)
}
