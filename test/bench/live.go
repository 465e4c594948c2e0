package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/providers/espeak/synth"
	"github.com/rspp/rspp/test/wsload"
)

// LiveConfig is the live-path measurement: a real `rspp serve --listen`
// with the light load pipeline (energystt -> rules -> espeak, each a
// plugin process) driven by wsload clients, once with one client (the
// baseline) and once with Clients clients, each phase as long.
type LiveConfig struct {
	// BinDir holds rspp, providers/{rules,espeak} and bench/energystt
	// (what make build and bench.mk build).
	BinDir   string
	Replies  string // the rules provider's replies.yaml
	Clients  int
	Phase    time.Duration
	TempDir  string
	Phrase   string
	BargeIns int // every Nth utterance barges in
}

// Live is the "live" section of results.json. Times are milliseconds.
type Live struct {
	Phrase string      `json:"phrase"`
	Phases []LivePhase `json:"phases"`
	// Ratios compare the loaded phase with the baseline (loaded/single)
	// and, within the loaded phase, the client's figure with the
	// supervisor's (client/supervisor: what the socket and the client add).
	Ratios map[string]Ratio `json:"ratios"`
	Notes  []string         `json:"notes,omitempty"`
}

// LivePhase is one load level.
type LivePhase struct {
	Clients int     `json:"clients"`
	Seconds float64 `json:"seconds"`
	// Client side (wsload): first audio = the utterance's speech end ->
	// first agent frame received; fence = barge-in speech start -> fence
	// received; fence_last_frame = -> last frame of the fenced turn
	// received; egress lateness per frame of an audio_start run.
	FirstAudioClient     Summary `json:"first_audio_client"`
	FenceClient          Summary `json:"barge_in_fence_client"`
	FenceLastFrameClient Summary `json:"barge_in_last_frame_client"`
	EgressLateness       Summary `json:"egress_lateness_client"`
	EgressGap            Summary `json:"egress_gap_client"`
	// Supervisor side (the server's timeline, its own clock; see
	// supervisorFigures): first audio = the VAD's end-of-speech decision
	// (speech_end, i.e. after its hangover) -> the playout's first frame of
	// the turn (playback_started); fence = the VAD's speech-start decision
	// that barged in -> the kernel's fence; last frame = -> the playout's
	// last frame of the fenced turn (playout_end). The client's first audio
	// starts at its last voiced frame, so it also holds the VAD hangover
	// (400 ms): client/supervisor compares what a user waits with what the
	// runtime adds after it decided.
	FirstAudioSupervisor     Summary `json:"first_audio_supervisor"`
	FenceSupervisor          Summary `json:"barge_in_fence_supervisor"`
	FenceLastFrameSupervisor Summary `json:"barge_in_last_frame_supervisor"`

	Turns            int `json:"turns"`
	Committed        int `json:"committed"`
	Fenced           int `json:"fenced"`
	SessionsLost     int `json:"sessions_lost"`
	WrongTerminals   int `json:"wrong_terminals"`
	FramesAfterFence int `json:"frames_after_fence"`
}

// MeasureLive runs the baseline and the loaded phase, each against a
// fresh server, and returns both with their ratios. A broken invariant
// (lost session, wrong terminal, audio after a fence) is an error: its
// figures would not mean what they say.
func MeasureLive(ctx context.Context, c LiveConfig) (*Live, error) {
	// The config the server gets lives in a temp dir: relative paths would
	// resolve against it.
	var err error
	if c.BinDir, err = filepath.Abs(c.BinDir); err != nil {
		return nil, err
	}
	if c.Replies, err = filepath.Abs(c.Replies); err != nil {
		return nil, err
	}
	s, err := synth.NewSynth("", "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	pcm, err := s.Synthesize(ctx, c.Phrase)
	if err != nil {
		return nil, fmt.Errorf("live: synthesising %q: %w", c.Phrase, err)
	}
	u, err := wsload.NewUtterance(fmt.Sprintf("%q", c.Phrase), pcm, wsload.DefaultVoicedDB)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	l := &Live{Phrase: c.Phrase, Ratios: map[string]Ratio{}}
	for _, n := range []int{1, c.Clients} {
		p, notes, err := livePhase(ctx, c, u, n)
		if err != nil {
			return nil, fmt.Errorf("live, %d clients: %w", n, err)
		}
		l.Phases = append(l.Phases, p)
		for _, n := range notes {
			if !slices.Contains(l.Notes, n) {
				l.Notes = append(l.Notes, n)
			}
		}
	}
	one, many := l.Phases[0], l.Phases[1]
	l.Ratios["first_audio_client loaded/single"] = RatioOf(many.FirstAudioClient, one.FirstAudioClient)
	l.Ratios["fence_client loaded/single"] = RatioOf(many.FenceClient, one.FenceClient)
	l.Ratios["fence_last_frame_client loaded/single"] = RatioOf(many.FenceLastFrameClient, one.FenceLastFrameClient)
	l.Ratios["first_audio_supervisor loaded/single"] = RatioOf(many.FirstAudioSupervisor, one.FirstAudioSupervisor)
	l.Ratios["fence_last_frame_supervisor loaded/single"] = RatioOf(many.FenceLastFrameSupervisor, one.FenceLastFrameSupervisor)
	l.Ratios["fence_last_frame client/supervisor"] = RatioOf(many.FenceLastFrameClient, many.FenceLastFrameSupervisor)
	l.Ratios["first_audio client/supervisor"] = RatioOf(many.FirstAudioClient, many.FirstAudioSupervisor)
	return l, nil
}

func livePhase(ctx context.Context, c LiveConfig, u wsload.Utterance, clients int) (LivePhase, []string, error) {
	dir, err := os.MkdirTemp(c.TempDir, "rspp-bench-live-")
	if err != nil {
		return LivePhase{}, nil, err
	}
	defer os.RemoveAll(dir)
	// Unix socket paths must stay short.
	state, err := os.MkdirTemp("", "rsb")
	if err != nil {
		return LivePhase{}, nil, err
	}
	defer os.RemoveAll(state)
	srv, err := wsload.StartServer(wsload.ServerConfig{
		RSPP: filepath.Join(c.BinDir, "rspp"), STT: filepath.Join(c.BinDir, "bench", "energystt"),
		Rules: filepath.Join(c.BinDir, "providers", "rules"), Espeak: filepath.Join(c.BinDir, "providers", "espeak"),
		Replies: c.Replies, Instances: 1 + clients/25, Dir: dir, StateDir: state})
	if err != nil {
		return LivePhase{}, nil, err
	}
	rep, _ := wsload.Run(ctx, wsload.Config{URL: srv.URL, Clients: clients, Utterances: []wsload.Utterance{u},
		Duration: c.Phase, Gap: 500 * time.Millisecond, BargeInEvery: c.BargeIns, Ramp: time.Second})
	if err := srv.Stop(20 * time.Second); err != nil {
		return LivePhase{}, nil, fmt.Errorf("%w\n%s", err, srv.Output())
	}
	p := LivePhase{Clients: clients, Seconds: c.Phase.Seconds(),
		FirstAudioClient: Summarize(rep.Samples.FirstAudio), FenceClient: Summarize(rep.Samples.Fence),
		FenceLastFrameClient: Summarize(rep.Samples.FenceLastFrame), EgressLateness: Summarize(rep.Samples.Lateness), EgressGap: Summarize(rep.Samples.Gap),
		Turns: rep.Turns, Committed: rep.Committed, Fenced: rep.FencedTurns, SessionsLost: rep.Lost,
		WrongTerminals: len(rep.WrongTerminals), FramesAfterFence: rep.FramesAfterFence}
	if err := rep.Check(); err != nil {
		return p, nil, err
	}
	recs, err := readTimeline(srv.Timeline)
	if err != nil {
		return p, nil, err
	}
	sup, notes := supervisorFigures(recs)
	p.FirstAudioSupervisor = Summarize(sup.firstAudio)
	p.FenceSupervisor = Summarize(sup.fence)
	p.FenceLastFrameSupervisor = Summarize(sup.lastFrame)
	return p, notes, nil
}

// readTimeline parses a JSON Lines timeline; a torn last line is ignored.
func readTimeline(path string) ([]kernel.TimelineRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []kernel.TimelineRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r kernel.TimelineRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			recs = append(recs, r)
		}
	}
	return recs, sc.Err()
}

// Timeline record types the supervisor-side figures are taken from.
const (
	recSpeechStart     = "speech_start"     // the VAD heard the user start (kernel)
	recSpeechEnd       = "speech_end"       // the VAD heard the user stop (kernel)
	recCancel          = "cancel"           // reason barge_in: the VAD decision that fenced a turn
	recFence           = "fence"            // the kernel fenced the turn
	recPlaybackStarted = "playback_started" // the playout wrote the turn's first frame
	recPlayoutEnd      = "playout_end"      // the playout wrote the turn's last frame (reason fenced|done)
)

type supervisorSamples struct {
	firstAudio, fence, lastFrame []time.Duration
}

// supervisorFigures takes, per session, from the server's own clock:
// first audio = speech_end of a turn -> its playback_started; barge-in
// fence = the speech start that interrupted a turn (speech_start, or the
// kernel's cancel with reason barge_in where there is no speech_start
// record) -> that turn's fence record; last frame = -> the playout_end of
// the fenced turn. A figure whose records the server does not write is
// left empty and named in a note.
func supervisorFigures(recs []kernel.TimelineRecord) (supervisorSamples, []string) {
	var s supervisorSamples
	type key struct{ session, turn string }
	speechEnd, bargeAt := map[key]int64{}, map[key]int64{}
	fenced, lastOut := map[key]bool{}, map[key]bool{}
	lastSpeechStart := map[string]int64{}
	seen := map[string]bool{}
	for _, r := range recs {
		k := key{r.SessionID, r.TurnID}
		seen[r.Type] = true
		switch r.Type {
		case recSpeechStart:
			lastSpeechStart[r.SessionID] = r.MonoNanos
		case recSpeechEnd:
			speechEnd[k] = r.MonoNanos
		case recCancel:
			if r.Reason == "barge_in" {
				at := r.MonoNanos
				if st, ok := lastSpeechStart[r.SessionID]; ok && st <= at {
					at = st
				}
				bargeAt[k] = at
			}
		case recFence:
			if at, ok := bargeAt[k]; ok && !fenced[k] {
				s.fence = append(s.fence, time.Duration(r.MonoNanos-at))
				fenced[k] = true
			}
		case recPlaybackStarted:
			if at, ok := speechEnd[k]; ok {
				s.firstAudio = append(s.firstAudio, time.Duration(r.MonoNanos-at))
				delete(speechEnd, k)
			}
		case recPlayoutEnd:
			// The playout writes its record between the kernel's cancel
			// and fence records of the turn: both are read from bargeAt.
			if at, ok := bargeAt[k]; ok && r.Reason == "fenced" && !lastOut[k] {
				s.lastFrame = append(s.lastFrame, time.Duration(max(r.MonoNanos-at, 0)))
				lastOut[k] = true
			}
		}
	}
	var notes []string
	for _, typ := range []string{recSpeechEnd, recPlaybackStarted, recPlayoutEnd} {
		if !seen[typ] {
			n := fmt.Sprintf("live: the server's timeline has no %s record: the supervisor-side figures that need it are empty", typ)
			if typ == recPlayoutEnd {
				n += "; barge_in_fence_supervisor (speech-start decision -> fence, when the one gate closes and no frame of the turn can be written) bounds the last frame out from above"
			}
			notes = append(notes, n)
		}
	}
	return s, notes
}

// missing says which prerequisite of the measurement is absent ("" if
// none): the binaries bench.mk builds, the replies, espeak-ng and sox.
func (c LiveConfig) missing() string {
	for _, p := range []string{filepath.Join(c.BinDir, "rspp"), filepath.Join(c.BinDir, "bench", "energystt"),
		filepath.Join(c.BinDir, "providers", "rules"), filepath.Join(c.BinDir, "providers", "espeak"), c.Replies} {
		if _, err := os.Stat(p); err != nil {
			return err.Error()
		}
	}
	if _, err := synth.NewSynth("", "", "", 0); err != nil {
		return err.Error()
	}
	return ""
}

func printLive(w io.Writer, l *Live) {
	fmt.Fprintf(w, "\nlive path (rspp serve --listen, energystt -> rules -> espeak, wsload clients speaking %q; ms)\n", l.Phrase)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tfigure\tn\tp50\tp99\tmax\t")
	for _, p := range l.Phases {
		for _, f := range []struct {
			name string
			s    Summary
		}{{"first audio, client", p.FirstAudioClient}, {"first audio, supervisor", p.FirstAudioSupervisor},
			{"barge-in -> fence, client", p.FenceClient}, {"barge-in -> fence, supervisor", p.FenceSupervisor},
			{"barge-in -> last frame, client", p.FenceLastFrameClient}, {"barge-in -> last frame out, supervisor", p.FenceLastFrameSupervisor},
			{"egress frame lateness, client", p.EgressLateness}, {"egress inter-frame gap over 20 ms, client", p.EgressGap}} {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%.1f\t%.1f\t%.1f\t\n", p.Clients, f.name, f.s.N, f.s.P50us/1e3, f.s.P99us/1e3, f.s.MaxUs/1e3)
		}
	}
	_ = tw.Flush()
	for _, p := range l.Phases {
		fmt.Fprintf(w, "%d clients: turns %d, committed %d, fenced %d, sessions lost %d, wrong terminals %d, frames after a fence %d\n",
			p.Clients, p.Turns, p.Committed, p.Fenced, p.SessionsLost, p.WrongTerminals, p.FramesAfterFence)
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ratio\tp50\tp99\t")
	for _, k := range slices.Sorted(mapKeys(l.Ratios)) {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t\n", k, l.Ratios[k].P50, l.Ratios[k].P99)
	}
	_ = tw.Flush()
}
