// Package conformance checks a node binary from the outside, the way the
// runtime will drive it: go-plugin handshake, Describe, Configure, Health,
// a kind-appropriate invocation, cancel, concurrent invocations and
// shutdown. It also runs one invocation on a binary for `rspp-node run`.
//
// It owns the node processes and private socket directories it starts and
// removes them before returning; it must never leave a process, socket or
// temp dir behind, and never talks gRPC itself (externalnode does).
package conformance

import (
	"context"
	"errors"
	"fmt"
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
	CheckConcurrency = "concurrency"
	CheckShutdown    = "shutdown"
)

// CancelGrace is how long a cancelled invocation may take to end.
const CancelGrace = 2 * time.Second

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

// Result returns the result of the named check (zero Result if it did not run).
func (r *Report) Result(check string) Result {
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
	report *Report
}

// Run starts opts.Binary and runs every check on it. The node is stopped and
// its socket directory removed before Run returns, whatever failed.
func Run(ctx context.Context, opts Options) *Report {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	rep := &Report{Binary: opts.Binary}
	c := &checker{opts: opts, report: rep}
	t0 := time.Now()
	s, err := start(ctx, opts.Binary, opts.Env, opts.SocketRoot, opts.Timeout)
	if err != nil {
		c.record(CheckHandshake, t0, err)
		for _, name := range []string{CheckDescribe, CheckConfigure, CheckHealth, CheckInvoke, CheckCancel, CheckConcurrency, CheckShutdown} {
			c.skip(name, "handshake failed")
		}
		return rep
	}
	c.s = s
	defer s.close() // after a failed shutdown check too
	info := s.inst.Info()
	c.pass(CheckHandshake, t0, fmt.Sprintf("go-plugin gRPC, node protocol %d, pid %d", externalnode.ProtocolVersion, s.inst.Pid()))
	rep.Name, rep.Kind, rep.Version = info.Name, info.Kind, info.Version
	c.kind = info.Kind

	c.run(CheckDescribe, func() (string, error) { return describe(info) })
	configured := c.run(CheckConfigure, c.configure)
	c.run(CheckHealth, c.health)
	for _, step := range []struct {
		name string
		fn   func() (string, error)
	}{{CheckInvoke, c.invoke}, {CheckCancel, c.cancel}, {CheckConcurrency, c.concurrency}} {
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

// invokeOnce runs one full invocation with the sample input and checks its
// end and the correlation of every output.
func (c *checker) invokeOnce(id string, inputs []eventabi.Event) (outcome, error) {
	inv, err := c.s.open(id, nil)
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
	if n := c.s.inst.ForeignFrames() - inv.foreign; n > 0 {
		return o, violation("%d outputs claimed another scope and were dropped by the host (last: %s)", n, c.s.inst.LastForeign())
	}
	if len(o.Events) == 0 {
		return o, violation("invocation %s ended OK but emitted nothing for the sample input", id)
	}
	for i := range o.Events {
		if err := checkOutput(&o.Events[i], id); err != nil {
			return o, fmt.Errorf("output %d: %w", i, err)
		}
	}
	return o, nil
}

// checkOutput checks one output's correlation, lane and payload.
func checkOutput(ev *eventabi.Event, invID string) error {
	switch {
	case ev.SessionID != sessionID:
		return violation("%s carries session %q, want %q", ev.Type, ev.SessionID, sessionID)
	case ev.TurnID != turnID:
		return violation("%s carries turn %q, want %q", ev.Type, ev.TurnID, turnID)
	case ev.InvocationID != invID:
		return violation("%s carries invocation %q, want %q", ev.Type, ev.InvocationID, invID)
	case ev.Lane != eventabi.LaneControl && ev.Lane != eventabi.LaneData && ev.Lane != eventabi.LaneTelemetry:
		return violation("%s on unknown lane %d", ev.Type, ev.Lane)
	}
	if err := eventabi.Validate(ev, eventabi.Limits{}); err != nil {
		return err
	}
	return nil
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
	o, err := c.invokeOnce("conformance-invoke", in)
	if err != nil {
		return "", fmt.Errorf("input %s: %w", what, err)
	}
	return fmt.Sprintf("input %s, ended OK in %s: %s", what, time.Since(t0).Round(time.Millisecond), summarize(o.Events)), nil
}

// cancel opens an invocation, feeds it without closing its input and
// cancels it: it must end, as cancelled or OK, within CancelGrace.
func (c *checker) cancel() (string, error) {
	inv, err := c.s.open("conformance-cancel", nil)
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
			_, err := c.invokeOnce(fmt.Sprintf("conformance-concurrent-%d", i), in)
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

func (c *checker) shutdown() (string, error) {
	pid := c.s.inst.Pid()
	t0 := time.Now()
	if err := c.s.close(); err != nil {
		return "", err
	}
	return fmt.Sprintf("pid %d gone and socket dir removed %s after Kill", pid, time.Since(t0).Round(time.Millisecond)), nil
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
