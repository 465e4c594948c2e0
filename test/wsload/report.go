package wsload

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"github.com/rspp/rspp/test/stats"
)

// Report is what a load run measured, over all clients.
type Report struct {
	URL      string `json:"url"`
	Clients  int    `json:"clients"`
	Duration string `json:"duration"`

	Sessions    int      `json:"sessions"`
	Lost        int      `json:"sessions_lost"`
	LostReasons []string `json:"lost_reasons,omitempty"`

	Utterances int `json:"utterances"`
	// Barge-ins: utterances spoken while the previous turn's audio was
	// arriving. Fenced: the server fenced that turn. Unfenced: its audio
	// went on after the speech start and no fence came. Late: the audio
	// had ended before the speech started (not a barge-in after all).
	BargeIns         int `json:"barge_ins"`
	BargeInsFenced   int `json:"barge_ins_fenced"`
	BargeInsUnfenced int `json:"barge_ins_unfenced"`
	BargeInsLate     int `json:"barge_ins_late"`
	NoTurn           int `json:"utterances_without_turn"`

	Turns          int            `json:"turns"`
	Committed      int            `json:"turns_committed"`
	Aborted        int            `json:"turns_aborted"`
	AbortReasons   map[string]int `json:"abort_reasons,omitempty"`
	WrongTerminals []string       `json:"wrong_terminals,omitempty"`
	WrongOpens     []string       `json:"wrong_opens,omitempty"`
	TurnsWithAudio int            `json:"turns_with_audio"`
	FencedTurns    int            `json:"fenced_turns"`
	Replies        map[string]int `json:"replies,omitempty"` // reply text -> turns

	Frames             int      `json:"frames"`
	FramesAfterFence   int      `json:"frames_after_fence"`
	UnattributedFrames int      `json:"unattributed_frames"`
	ProtocolErrors     []string `json:"protocol_errors,omitempty"`

	// First audio: the utterance's speech end -> the first frame of its
	// turn. Fence: a barge-in's speech start -> the fence of the turn it
	// interrupted; FenceLastFrame: -> that turn's last frame received.
	// Lateness: per frame k >= 1 of an audio_start run,
	// max(0, arrival_k - (arrival_0 + 20 ms * k)).
	FirstAudio     Stats `json:"first_audio_ms"`
	Fence          Stats `json:"barge_in_fence_ms"`
	FenceLastFrame Stats `json:"barge_in_last_frame_ms"`
	Lateness       Stats `json:"egress_lateness_ms"`
	// Gap: per frame k >= 1 of a run, arrival_k - arrival_(k-1) - 20 ms,
	// positive part.
	Gap Stats `json:"egress_gap_ms"`

	Samples Samples `json:"-"`
}

// Samples are the raw figures behind the Report's statistics.
type Samples struct {
	FirstAudio, Fence, FenceLastFrame, Lateness, Gap []time.Duration
}

// Stats summarise one figure in milliseconds.
type Stats struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// StatsOf summarises d by the nearest-rank method (a percentile is always a
// sample that was observed). It does not reorder d.
func StatsOf(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	st := stats.Of(d)
	ms := func(v time.Duration) float64 { return math.Round(float64(v)/1e3) / 1e3 }
	return Stats{N: st.N, P50: ms(st.P50), P99: ms(st.P99), Max: ms(st.Max), Mean: ms(st.Mean)}
}

// bargeInSlack: a turn whose last frame arrived at most this long after
// the speech start counts as having ended before it (one frame in flight).
const bargeInSlack = FrameDuration

// Summarize folds the clients' results into one Report.
func Summarize(results []*ClientResult) *Report {
	r := &Report{AbortReasons: map[string]int{}, Replies: map[string]int{}}
	for _, cr := range results {
		if cr == nil {
			continue
		}
		r.Sessions++
		if cr.Err != nil {
			r.Lost++
			r.LostReasons = append(r.LostReasons, fmt.Sprintf("session %q: %v", cr.Session, cr.Err))
		}
		byID := map[string]*Turn{}
		for _, t := range cr.Turns {
			byID[t.ID] = t
			r.Turns++
			r.Committed += t.Commits
			r.Aborted += t.Aborts
			if t.Aborts > 0 {
				r.AbortReasons[t.AbortReason]++
			}
			if t.Terminals() != 1 {
				r.WrongTerminals = append(r.WrongTerminals, fmt.Sprintf("%s/%s: %d commit, %d abort", cr.Session, t.ID, t.Commits, t.Aborts))
			}
			if t.Opens != 1 {
				r.WrongOpens = append(r.WrongOpens, fmt.Sprintf("%s/%s: %d open", cr.Session, t.ID, t.Opens))
			}
			if t.Frames > 0 {
				r.TurnsWithAudio++
			}
			if t.Fenced {
				r.FencedTurns++
			}
			if t.Reply != "" {
				r.Replies[t.Reply]++
			}
			r.Frames += t.Frames
			r.FramesAfterFence += t.FramesAfterFence
		}
		r.UnattributedFrames += cr.UnattributedFrames
		for _, e := range cr.ProtocolErrors {
			r.ProtocolErrors = append(r.ProtocolErrors, fmt.Sprintf("session %q: %s", cr.Session, e))
		}
		r.Samples.Lateness = append(r.Samples.Lateness, cr.Lateness...)
		r.Samples.Gap = append(r.Samples.Gap, cr.Gaps...)
		for _, u := range cr.Utterances {
			r.Utterances++
			if u.Late {
				r.BargeInsLate++
			}
			if t := byID[u.Turn]; t == nil {
				r.NoTurn++
			} else if t.Frames > 0 && !u.SpeechEnd.IsZero() {
				r.Samples.FirstAudio = append(r.Samples.FirstAudio, max(t.FirstFrame.Sub(u.SpeechEnd), 0))
			}
			if !u.BargeIn {
				continue
			}
			bt := byID[u.BargedTurn]
			switch {
			case bt == nil || u.SpeechStart.IsZero():
			case bt.Fenced:
				r.BargeIns++
				r.BargeInsFenced++
				r.Samples.Fence = append(r.Samples.Fence, bt.FenceAt.Sub(u.SpeechStart))
				r.Samples.FenceLastFrame = append(r.Samples.FenceLastFrame, max(bt.LastFrame.Sub(u.SpeechStart), 0))
			case bt.LastFrame.Sub(u.SpeechStart) <= bargeInSlack:
				r.BargeInsLate++
			default:
				r.BargeIns++
				r.BargeInsUnfenced++
			}
		}
	}
	r.FirstAudio = StatsOf(r.Samples.FirstAudio)
	r.Fence = StatsOf(r.Samples.Fence)
	r.FenceLastFrame = StatsOf(r.Samples.FenceLastFrame)
	r.Lateness = StatsOf(r.Samples.Lateness)
	r.Gap = StatsOf(r.Samples.Gap)
	return r
}

// Print writes a human summary of r.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "%d clients x %s against %s\n", r.Clients, r.Duration, r.URL)
	fmt.Fprintf(w, "sessions: %d, lost: %d\n", r.Sessions, r.Lost)
	fmt.Fprintf(w, "utterances: %d (without a turn: %d); barge-ins: %d (fenced %d, unfenced %d), late %d\n",
		r.Utterances, r.NoTurn, r.BargeIns, r.BargeInsFenced, r.BargeInsUnfenced, r.BargeInsLate)
	fmt.Fprintf(w, "turns: %d, committed %d, aborted %d %v; wrong terminals: %d, wrong opens: %d\n",
		r.Turns, r.Committed, r.Aborted, sortedCounts(r.AbortReasons), len(r.WrongTerminals), len(r.WrongOpens))
	fmt.Fprintf(w, "audio: %d frames in %d turns; fenced turns %d; frames after a fence: %d; frames outside a run: %d\n",
		r.Frames, r.TurnsWithAudio, r.FencedTurns, r.FramesAfterFence, r.UnattributedFrames)
	fmt.Fprintf(w, "replies: %v\n", sortedCounts(r.Replies))
	for _, s := range []struct {
		name string
		st   Stats
	}{{"first audio (speech end -> first frame)", r.FirstAudio}, {"barge-in: speech start -> fence", r.Fence},
		{"barge-in: speech start -> last frame", r.FenceLastFrame}, {"egress frame lateness", r.Lateness}, {"egress inter-frame gap over 20 ms", r.Gap}} {
		fmt.Fprintf(w, "%-42s n=%-6d p50 %8.1f ms  p99 %8.1f ms  max %8.1f ms\n", s.name, s.st.N, s.st.P50, s.st.P99, s.st.Max)
	}
	for _, l := range [][]string{r.LostReasons, r.WrongTerminals, r.WrongOpens, r.ProtocolErrors} {
		for i, s := range l {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more\n", len(l)-i)
				break
			}
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
}

func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := "{"
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q: %d", k, m[k])
	}
	return s + "}"
}

// WriteFile writes r as indented JSON to path.
func (r *Report) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
