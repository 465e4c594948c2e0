package app

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/transports"
	"github.com/rspp/rspp/transports/file"
)

// FileRun is one session from a WAV file (the file transport).
type FileRun struct {
	Input    string // 16 kHz mono WAV
	Output   string // agent audio WAV
	Timeline string // JSON Lines
	Realtime bool   // pace input like a microphone
	// SessionID defaults to "file-1".
	SessionID string
	// TenantID is the session's tenant: tenant-profile providers serve it
	// from that tenant's own pool ("": the default tenant).
	TenantID string
}

// Summary is what a file run did.
type Summary struct {
	SessionID    string
	Turns        int
	Commits      int
	Aborts       int
	AbortReasons []string
	Transcripts  []string // final transcripts, in order
	Replies      []string // final reply texts, in order
	OutputFrames int
	Output       string
	Timeline     string
}

// Line is the one-line timeline summary.
func (s Summary) Line() string {
	line := fmt.Sprintf("session %s: %d turn(s), %d committed, %d aborted", s.SessionID, s.Turns, s.Commits, s.Aborts)
	if len(s.AbortReasons) > 0 {
		line += " (" + strings.Join(s.AbortReasons, "; ") + ")"
	}
	return line
}

// RunFile plays the input through one session, waits until the agent has
// finished its last turn, closes the session and reports. If ctx ends
// first (SIGTERM), the session closes at once: an active turn aborts with
// reason session_close and the run returns ctx's error with the summary so
// far.
func RunFile(ctx context.Context, rt *supervisor.Runtime, fr FileRun) (Summary, error) {
	if fr.SessionID == "" {
		fr.SessionID = "file-1"
	}
	sum := Summary{SessionID: fr.SessionID, Output: fr.Output, Timeline: fr.Timeline}
	pcm, err := file.Load(fr.Input)
	if err != nil {
		return sum, err
	}
	sink, err := file.Create(fr.Output)
	if err != nil {
		return sum, err
	}
	defer sink.Close()
	counter := &summaryTap{sum: &sum}
	var tl session.Timeline = counter
	if fr.Timeline != "" {
		jl, err := rt.CreateTimeline(fr.Timeline, counter)
		if err != nil {
			return sum, err
		}
		defer jl.Close()
		tl = jl
	}
	conn := file.NewConn(transports.Route{SessionID: fr.SessionID, TenantID: fr.TenantID}, file.Source{PCM: pcm, Realtime: fr.Realtime}, sink)
	res, err := rt.ServeConn(ctx, conn, supervisor.ConnOptions{Timeline: tl, Observe: counter.observe, ShutdownReason: supervisor.CloseSessionEnd})
	if err != nil {
		return sum, err
	}
	sum.OutputFrames, _ = sink.Frames()
	counter.mu.Lock()
	defer counter.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	if res.ConnErr != nil {
		return sum, res.ConnErr
	}
	return sum, nil
}

// summaryTap counts lifecycle records and keeps transcripts/replies.
type summaryTap struct {
	mu  sync.Mutex
	sum *Summary
}

func (t *summaryTap) Append(rec kernel.TimelineRecord) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch rec.Type {
	case "turn_open":
		t.sum.Turns++
	case "turn_commit":
		t.sum.Commits++
	case "turn_abort":
		t.sum.Aborts++
		t.sum.AbortReasons = append(t.sum.AbortReasons, rec.Reason)
	}
}

func (t *summaryTap) observe(_ string, ev eventabi.Event) {
	if ev.Text == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ev.Type {
	case eventabi.TypeTranscriptFinal:
		t.sum.Transcripts = append(t.sum.Transcripts, ev.Text.Text)
	case eventabi.TypeTextFinal:
		t.sum.Replies = append(t.sum.Replies, ev.Text.Text)
	}
}
