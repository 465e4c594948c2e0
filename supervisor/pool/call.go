package pool

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Call is one invocation opened through a pool. Its end error is typed:
// when the instance died, it is the instance's *CrashError.
type Call struct {
	pool    *Pool
	inst    *Instance
	hc      *externalnode.HostCall
	ended   chan struct{}
	endOnce sync.Once
	hcSet   chan struct{} // closed once hc is set (an end can overtake Open's return)
	gone    atomic.Bool   // cancelled or abandoned: outputs and end are dropped
}

// Open starts an invocation on a ready instance of the pool, avoiding the
// named instances if another is ready. If the chosen instance turns out to
// be dead already, the next one is tried.
func (p *Pool) Open(req externalnode.OpenRequest, avoid []string, h externalnode.Handler) (*Call, error) {
	avoid = append([]string(nil), avoid...)
	var lastErr error
	for range 3 {
		inst, err := p.acquire(avoid)
		if err != nil {
			if lastErr != nil {
				return nil, errors.Join(err, lastErr)
			}
			return nil, err
		}
		c := &Call{pool: p, inst: inst, ended: make(chan struct{}), hcSet: make(chan struct{})}
		wrapped := externalnode.Handler{
			OnEvent: func(ev eventabi.Event) {
				if !c.gone.Load() && h.OnEvent != nil {
					h.OnEvent(ev)
				}
			},
			OnEnd: func(err error) {
				c.endOnce.Do(func() { close(c.ended) })
				if errors.Is(err, externalnode.ErrOutputBudget) {
					// The host ended it; the plugin was told to stop
					// and must, like after a cancel.
					c.watchHung("output budget exceeded")
				}
				if !c.gone.Load() && h.OnEnd != nil {
					h.OnEnd(inst.outcome(err))
				}
			},
			OnDelivered: h.OnDelivered,
			InFlight:    h.InFlight,
		}
		hc, err := inst.node.Open(req, wrapped)
		inst.reserved.Add(-1) // counted by the node from here on
		if err == nil {
			inst.served.Add(1)
			c.hc = hc
			close(c.hcSet)
			return c, nil
		}
		lastErr = inst.outcome(err)
		avoid = append(avoid, inst.name)
	}
	return nil, lastErr
}

// Instance is the name of the instance serving the call.
func (c *Call) Instance() string { return c.inst.name }

// Send delivers one input event.
func (c *Call) Send(ev eventabi.Event) error { return c.hc.Send(ev) }

// CloseInput says no more input will come.
func (c *Call) CloseInput() error { return c.hc.CloseInput() }

// Cancel asks the plugin, on the control stream, to stop the invocation,
// and forgets it: later outputs and its end are dropped. If the plugin has
// not ended it within the pool's kill grace, the instance is hung: it is
// killed and counted as a crash (its other invocations fail typed).
func (c *Call) Cancel(reason string) {
	if c.gone.Swap(true) {
		return
	}
	_ = c.hc.Cancel(reason) // a full control queue is a hung plugin: the grace below kills it
	c.watchHung("cancel (" + reason + ")")
}

// watchHung kills the instance if the plugin has not finished the call
// within the pool's kill grace after why.
func (c *Call) watchHung(why string) {
	p := c.pool
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		select {
		case <-c.hcSet:
		case <-p.stop:
			return
		}
		select {
		case <-c.hc.Finished():
		case <-p.stop:
		case <-p.cfg.Clock.After(p.cfg.KillGrace):
			p.killHung(c.inst, "invocation "+c.hc.ID()+" still running "+p.cfg.KillGrace.String()+" after "+why)
		}
	}()
}
