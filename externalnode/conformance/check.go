// Package conformance checks a node binary from the outside, the way the
// runtime will drive it: go-plugin handshake, Describe, Configure, Health,
// a kind-appropriate invocation whose outputs must pass the runtime's own
// rules (kernel.NodeOutputRules, the one implementation), cancel within
// the grace, no output after a cancel, credits granted back, output within
// the runtime's default budget, concurrent invocations and a graceful stop
// under StopGrace. It also runs one invocation on a binary for
// `rspp-node run`.
//
// It owns the node processes and private socket directories it starts and
// removes them before returning; it must never leave a process, socket or
// temp dir behind, and never talks gRPC itself (externalnode does).
//
// It imports externalnode and kernel/... and links no provider: a spoken
// sample comes from a TTS node binary (PluginSpeech).
package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Check names, in the order they run.
const (
	CheckHandshake   = "handshake"
	CheckDescribe    = "describe"
	CheckConfigure   = "configure"
	CheckHealth      = "health"
	CheckInvoke      = "invoke"
	CheckCancel      = "cancel"
	CheckQuiet       = "no-emit-after-cancel"
	CheckCredits     = "credits"
	CheckBounded     = "bounded-output"
	CheckConcurrency = "concurrency"
	CheckShutdown    = "shutdown"
)

// Checks are the check names in the order they run.
var Checks = []string{CheckHandshake, CheckDescribe, CheckConfigure, CheckHealth, CheckInvoke, CheckCancel,
	CheckQuiet, CheckCredits, CheckBounded, CheckConcurrency, CheckShutdown}

// CancelGrace is how long a cancelled invocation may take to end: the
// runtime's default kill grace (runtime.kill_grace), after which it kills
// the instance as hung.
const CancelGrace = 2 * time.Second

// StopGrace is how long a node may take to exit after go-plugin's
// controller Shutdown; the runtime waits 2 s and then kills, so a node
// that misses this slows every stop, drain and upgrade.
const StopGrace = 500 * time.Millisecond

// creditRounds is how many input windows the credits check sends.
const creditRounds = 3

// quietWindow is how long a node must stay silent before the
// no-emit-after-cancel check cancels it (its outputs for the inputs so
// far are then out).
const quietWindow = 200 * time.Millisecond

// quietSilence is how long the no-emit-after-cancel check waits for a
// first output before it cancels a node that has emitted nothing.
const quietSilence = time.Second

// unlimited is the output budget of the checks other than bounded-output,
// so a flooding node fails that check alone.
var unlimited = externalnode.OutputBudget{BytesPerSecond: 1 << 40, EventsPerSecond: 1 << 40, MaxEventBytes: externalnode.MaxMessageBytes, MaxBytesInFlight: 1 << 40}

// defaultTimeout bounds the handshake and each invocation when
// Options.Timeout is not set.
const defaultTimeout = 10 * time.Second

// concurrentCalls is how many invocations the concurrency check opens at once.
const concurrentCalls = 3

// Options says what to check and how.
type Options struct {
	Binary string
	// Config is the node's configuration block as JSON (nil: none).
	Config []byte
	// ConfigDir is what relative paths in Config are relative to.
	ConfigDir string
	// Timeout bounds the handshake and each invocation (default 10 s).
	Timeout time.Duration
	// Speech, when set, adds spoken SampleText to the stt sample input.
	Speech SpeechFunc
	// Env is extra environment for the node process.
	Env []string
	// SocketRoot is where the private socket directory is made (default:
	// the temp dir). Keep it short: unix socket paths must be < 108 bytes.
	SocketRoot string
	// UnknownEvents is the gateway policy for output types the runtime
	// does not know (gateway.unknown_events: reject, drop, pass; "": the
	// runtime's default for node output, pass).
	UnknownEvents string
}

// Status is the outcome of one check.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip" // not run because an earlier check failed; counts as not passed
)

// Result is one check's outcome.
type Result struct {
	Check   string        `json:"check"`
	Status  Status        `json:"status"`
	Detail  string        `json:"detail"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Report is the outcome of every check on one binary.
type Report struct {
	Binary  string   `json:"binary"`
	Name    string   `json:"name,omitempty"`
	Kind    string   `json:"kind,omitempty"`
	Version string   `json:"version,omitempty"`
	Results []Result `json:"results"`
}

// OK reports whether every check passed.
func (r *Report) OK() bool { return len(r.Failed()) == 0 }

// Failed names the checks that did not pass (failed or skipped).
func (r *Report) Failed() []string {
	var out []string
	for _, res := range r.Results {
		if res.Status != Pass {
			out = append(out, res.Check)
		}
	}
	return out
}

// result returns the result of the named check (zero result if it did not run).
func (r *Report) result(check string) Result {
	for _, res := range r.Results {
		if res.Check == check {
			return res
		}
	}
	return Result{}
}

// checker runs the checks against one started node.
type checker struct {
	opts   Options
	s      *session
	kind   string
	info   externalnode.Info
	report *Report
}

// Run starts opts.Binary and runs every check on it. The node is stopped and
// its socket directory removed before Run returns, whatever failed.
func Run(ctx context.Context, opts Options) *Report {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	rep := &Report{Binary: opts.Binary}
	c := &checker{opts: opts, report: rep}
	t0 := time.Now()
	s, err := start(ctx, opts.Binary, opts.Env, opts.SocketRoot, opts.Timeout)
	if err != nil {
		c.record(CheckHandshake, t0, err)
		for _, name := range Checks[1:] {
			c.skip(name, "handshake failed")
		}
		return rep
	}
	c.s = s
	defer s.close() // after a failed shutdown check too
	info := s.inst.Info()
	c.info = info
	c.pass(CheckHandshake, t0, fmt.Sprintf("go-plugin gRPC on a unix socket inside its socket dir, node protocol %d, input window %d, pid %d", externalnode.ProtocolVersion, info.InputWindow, s.inst.Pid()))
	rep.Name, rep.Kind, rep.Version = info.Name, info.Kind, info.Version
	c.kind = info.Kind

	c.run(CheckDescribe, func() (string, error) { return describe(info) })
	configured := c.run(CheckConfigure, c.configure)
	c.run(CheckHealth, c.health)
	for _, step := range []struct {
		name string
		fn   func() (string, error)
	}{{CheckInvoke, c.invoke}, {CheckCancel, c.cancel}, {CheckQuiet, c.quiet}, {CheckCredits, c.credits},
		{CheckBounded, c.bounded}, {CheckConcurrency, c.concurrency}} {
		if !configured {
			c.skip(step.name, "configure failed")
			continue
		}
		c.run(step.name, step.fn)
	}
	c.run(CheckShutdown, c.shutdown)
	return rep
}

func (c *checker) run(name string, fn func() (string, error)) bool {
	t0 := time.Now()
	detail, err := fn()
	if err != nil {
		c.record(name, t0, err)
		return false
	}
	c.pass(name, t0, detail)
	return true
}

func (c *checker) pass(name string, t0 time.Time, detail string) {
	c.report.Results = append(c.report.Results, Result{Check: name, Status: Pass, Detail: detail, Elapsed: time.Since(t0)})
}

func (c *checker) record(name string, t0 time.Time, err error) {
	c.report.Results = append(c.report.Results, Result{Check: name, Status: Fail, Detail: err.Error(), Elapsed: time.Since(t0)})
}

func (c *checker) skip(name, why string) {
	c.report.Results = append(c.report.Results, Result{Check: name, Status: Skip, Detail: "not run: " + why})
}

// CheckError is a conformance violation found by a check.
type CheckError struct{ Msg string }

func (e *CheckError) Error() string { return e.Msg }

func violation(format string, args ...any) error {
	return &CheckError{Msg: fmt.Sprintf(format, args...)}
}

func describe(info externalnode.Info) (string, error) {
	var problems []error
	if info.Name == "" {
		problems = append(problems, violation("name is empty"))
	}
	if !knownKind(info.Kind) {
		problems = append(problems, violation("kind %q is not one of %v", info.Kind, Kinds))
	}
	if info.Version == "" {
		problems = append(problems, violation("version is empty"))
	}
	if err := errors.Join(problems...); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s@%s accepts %v emits %v", info.Kind, info.Name, info.Version, info.Accepts, info.Emits), nil
}

func (c *checker) configure() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	if err := c.s.inst.Configure(ctx, configFor(c.opts.Config, c.opts.ConfigDir)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d bytes of config accepted", len(c.opts.Config)), nil
}

func (c *checker) health() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	open, err := c.s.inst.Health(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("serving, %d open invocations", open), nil
}

// invokeOnce runs one full invocation with the given input under budget
// and checks that it ended OK; with rules set, also that it emitted, into
// its own invocation only, outputs that all pass the runtime's rules for
// node output (the invoke check: the others test one thing each).
func (c *checker) invokeOnce(id string, inputs []eventabi.Event, budget externalnode.OutputBudget, rules bool) (outcome, error) {
	inv, err := c.s.open(id, budget, nil)
	if err != nil {
		return outcome{}, err
	}
	if err := inv.send(inputs); err != nil {
		inv.call.Abandon()
		return outcome{}, err
	}
	if err := inv.call.CloseInput(); err != nil {
		inv.call.Abandon()
		return outcome{}, err
	}
	o, err := inv.wait(c.opts.Timeout)
	if err != nil {
		return o, err
	}
	if o.Err != nil {
		return o, fmt.Errorf("invocation %s ended with error: %w", id, o.Err)
	}
	if !rules {
		return o, nil
	}
	if n := c.s.inst.ForeignFrames() - inv.foreign; n > 0 {
		return o, violation("%d outputs claimed another scope and were dropped by the host (last: %s)", n, c.s.inst.LastForeign())
	}
	if len(o.Events) == 0 {
		return o, violation("invocation %s ended OK but emitted nothing for the sample input", id)
	}
	r := kernel.NodeOutputRules{Emits: c.info.Emits, UnknownPolicy: c.opts.UnknownEvents,
		SessionID: sessionID, TurnID: turnID, InvocationID: id, NodeID: nodeID,
		Node: nodeID, Provider: c.info.Name, Version: c.info.Version}
	for i := range o.Events {
		ev := o.Events[i]
		if rule, err := r.Check(&ev); rule != kernel.OutputOK {
			if err == nil {
				err = violation("%s dropped by the unknown_events policy %q", ev.Type, c.opts.UnknownEvents)
			}
			return o, fmt.Errorf("output %d: the runtime would refuse it: %w", i, err)
		}
	}
	return o, nil
}

// sample makes the kind-appropriate input (synthesising speech for stt).
func (c *checker) sample() ([]eventabi.Event, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	in, what, err := sampleInput(ctx, c.kind, c.opts.Speech)
	if err != nil {
		return nil, "", fmt.Errorf("make sample input: %w", err)
	}
	return in, what, nil
}

func (c *checker) invoke() (string, error) {
	in, what, err := c.sample()
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	o, err := c.invokeOnce("conformance-invoke", in, unlimited, true)
	if err != nil {
		return "", fmt.Errorf("input %s: %w", what, err)
	}
	return fmt.Sprintf("input %s, ended OK in %s: %s", what, time.Since(t0).Round(time.Millisecond), summarize(o.Events)), nil
}

// cancel opens an invocation, feeds it without closing its input and
// cancels it: it must end, as cancelled or OK, within CancelGrace.
func (c *checker) cancel() (string, error) {
	inv, err := c.s.open("conformance-cancel", unlimited, nil)
	if err != nil {
		return "", err
	}
	in := TextInput(c.kind, sampleText(c.kind))
	if c.kind == "stt" {
		in = AudioInput(silence(1))[:10]
	}
	if err := inv.send(in); err != nil {
		inv.call.Abandon()
		return "", err
	}
	// Cancel a running invocation: once its input reached the plugin.
	select {
	case <-inv.delivered:
	case <-time.After(c.opts.Timeout):
		inv.call.Abandon()
		return "", &TimeoutError{What: "first input of the cancel check reaching the node", After: c.opts.Timeout}
	}
	t0 := time.Now()
	if err := inv.call.Cancel("conformance"); err != nil {
		inv.call.Abandon()
		return "", err
	}
	o, err := inv.wait(CancelGrace)
	if err != nil {
		return "", fmt.Errorf("after cancel (input left open): %w", err)
	}
	if o.Err != nil && !errors.Is(o.Err, kernel.ErrCancelled) {
		return "", fmt.Errorf("after cancel, ended with %w, want cancelled", o.Err)
	}
	how := "cancelled"
	if o.Err == nil {
		how = "OK (it finished before the cancel landed)"
	}
	return fmt.Sprintf("ended %s %s after cancel", how, time.Since(t0).Round(time.Millisecond)), nil
}

func (c *checker) concurrency() (string, error) {
	in, _, err := c.sample()
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	errs := make(chan error, concurrentCalls)
	for i := range concurrentCalls {
		go func() {
			_, err := c.invokeOnce(fmt.Sprintf("conformance-concurrent-%d", i), in, unlimited, false)
			errs <- err
		}()
	}
	var problems []error
	for range concurrentCalls {
		if err := <-errs; err != nil {
			problems = append(problems, err)
		}
	}
	if err := errors.Join(problems...); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d invocations at once all ended OK in %s", concurrentCalls, time.Since(t0).Round(time.Millisecond)), nil
}

// shutdown stops the node as the runtime does (go-plugin's controller
// Shutdown, then a kill after 2 s): it must be gone within StopGrace and
// leave nothing behind.
func (c *checker) shutdown() (string, error) {
	pid := c.s.inst.Pid()
	t0 := time.Now()
	if err := c.s.close(); err != nil {
		return "", err
	}
	took := time.Since(t0)
	if took > StopGrace {
		return "", violation("pid %d took %s to exit after the controller's Shutdown, limit %s (does it serve plugin.GRPCController and exit on Shutdown?)", pid, took.Round(time.Millisecond), StopGrace)
	}
	return fmt.Sprintf("pid %d gone and socket dir removed %s after Shutdown", pid, took.Round(time.Millisecond)), nil
}

// quiet opens an invocation without input, waits until the node has been
// silent (quietWindow after an output, quietSilence without any), cancels
// it and counts outputs arriving after the cancel: a node must emit
// nothing once told to stop. No input, so nothing of a correct node can
// still be on its way (a flood of a streaming node would be).
func (c *checker) quiet() (string, error) {
	var mu sync.Mutex
	var last time.Time // of the latest output; zero before the first
	inv, err := c.s.open("conformance-quiet", unlimited, func(eventabi.Event) {
		mu.Lock()
		last = time.Now()
		mu.Unlock()
	})
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	deadline := t0.Add(c.opts.Timeout)
	for {
		// Quiet: silent for quietWindow after an output, or no output at
		// all for quietSilence (a node that emits only once its input
		// closes).
		mu.Lock()
		seen, idle := !last.IsZero(), time.Since(last)
		mu.Unlock()
		if seen && idle >= quietWindow || !seen && time.Since(t0) >= quietSilence {
			break
		}
		if time.Now().After(deadline) {
			inv.call.Abandon()
			return "", &TimeoutError{What: "the node's output going quiet before the cancel", After: c.opts.Timeout}
		}
		time.Sleep(quietWindow / 4)
	}
	if err := inv.call.Cancel("conformance"); err != nil {
		inv.call.Abandon()
		return "", err
	}
	_, werr := inv.wait(CancelGrace)
	late := inv.call.DroppedAfterCancel()
	if late > 0 {
		return "", violation("%d outputs arrived after the cancel (the runtime drops them and counts them against the node)", late)
	}
	if werr != nil {
		return "no output after the cancel (it did not end: see the cancel check)", nil
	}
	return "no output after the cancel", nil
}

// credits sends creditRounds windows of input: the host sends no more
// than a window ahead, so the invocation ends only if the node grants
// credit back as it consumes.
func (c *checker) credits() (string, error) {
	w := c.info.InputWindow
	n := creditRounds * w
	var in []eventabi.Event
	if c.kind == "stt" {
		in = AudioInput(silence(1 + n/50))[:n]
	} else {
		one := TextInput(c.kind, sampleText(c.kind))
		for range n {
			in = append(in, one[0])
		}
	}
	var delivered atomic.Int64
	inv, err := c.s.openDelivered("conformance-credits", unlimited, func(k int) { delivered.Add(int64(k)) })
	if err != nil {
		return "", err
	}
	if err := inv.send(in); err != nil {
		inv.call.Abandon()
		return "", err
	}
	if err := inv.call.CloseInput(); err != nil {
		inv.call.Abandon()
		return "", err
	}
	o, err := inv.wait(c.opts.Timeout)
	if err != nil {
		return "", violation("%d of %d inputs delivered with an input window of %d: the node granted no more credit (CREDIT frames as it consumes inputs)", delivered.Load(), n, w)
	}
	if o.Err != nil {
		return "", fmt.Errorf("invocation with %d inputs ended with error: %w", n, o.Err)
	}
	return fmt.Sprintf("%d inputs through a window of %d, ended OK", n, w), nil
}

// bounded runs the sample invocation under the runtime's default output
// budget (externalnode.DefaultOutputBudget).
func (c *checker) bounded() (string, error) {
	in, _, err := c.sample()
	if err != nil {
		return "", err
	}
	o, err := c.invokeOnce("conformance-bounded", in, externalnode.OutputBudget{}, false)
	if err != nil {
		var be *externalnode.BudgetError
		if errors.As(err, &be) {
			return "", violation("over the runtime's default output budget: %v", be)
		}
		return "", err
	}
	bytes := 0
	for _, ev := range o.Events {
		bytes += externalnode.EventBytes(ev)
	}
	return fmt.Sprintf("%d outputs, %d bytes: within the default output budget", len(o.Events), bytes), nil
}

func configFor(raw []byte, dir string) externalnode.Config {
	return externalnode.Config{NodeID: nodeID, Dir: dir, Raw: raw}
}

// summarize counts outputs by type, e.g. "3 outputs (2 text.delta, 1 text.final)".
func summarize(evs []eventabi.Event) string {
	counts := map[eventabi.Type]int{}
	var order []eventabi.Type
	for _, ev := range evs {
		if counts[ev.Type] == 0 {
			order = append(order, ev.Type)
		}
		counts[ev.Type]++
	}
	s := fmt.Sprintf("%d outputs (", len(evs))
	for i, t := range order {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", counts[t], t)
	}
	s += ")"
	for i := len(evs) - 1; i >= 0; i-- { // the last final text says most
		if evs[i].Text != nil && evs[i].Text.Final {
			s += fmt.Sprintf(", last final %s: %q", evs[i].Type, evs[i].Text.Text)
			break
		}
	}
	return s
}
