package pool

import (
	"math"
	"time"
)

// ScalePolicy is how a pool with Max > Warm follows its load. Every
// Interval it measures the load (invocations open or on their way on its
// ready instances, plus acquires queued for want of one) and wants
// ceil(load / UpBusy) instances plus one warm standby, within Warm..Max.
// It grows at once, one instance per interval; it shrinks only after it
// wanted fewer instances for DownIdle, by draining the least loaded
// instance (no new invocation goes to it; it stops when its last one
// ends or after DrainTimeout).
type ScalePolicy struct {
	UpBusy       float64       // open invocations per instance before growing (default 1)
	DownIdle     time.Duration // default 10s
	Interval     time.Duration // default 200ms
	DrainTimeout time.Duration // default 30s
}

func (s *ScalePolicy) defaults() {
	if s.UpBusy <= 0 {
		s.UpBusy = 1
	}
	if s.DownIdle <= 0 {
		s.DownIdle = 10 * time.Second
	}
	if s.Interval <= 0 {
		s.Interval = 200 * time.Millisecond
	}
	if s.DrainTimeout <= 0 {
		s.DrainTimeout = 30 * time.Second
	}
}

// want is how many instances a load needs, standby included.
func (s ScalePolicy) want(load, warm, maxN int) int {
	n := int(math.Ceil(float64(load)/s.UpBusy)) + 1
	return min(max(n, warm), maxN)
}

// autoscale moves the pool's target between Warm and Max; the supervise
// loop starts what the target lacks, and scale-down drains here.
func (p *Pool) autoscale() {
	defer p.wg.Done()
	var lowSince time.Time // since when fewer instances were wanted
	for {
		select {
		case <-p.stop:
			return
		case <-p.cfg.Clock.After(p.cfg.Scale.Interval):
		}
		now := p.cfg.Clock.Now()
		p.mu.Lock()
		load := p.waiting
		for _, inst := range p.insts {
			if inst.State() == Ready {
				load += inst.load()
			}
		}
		want := p.cfg.Scale.want(load, p.cfg.Warm, p.cfg.Max)
		var drain *Instance
		grow := false
		switch {
		case p.closed:
		case want > p.target:
			grow = true
			p.target++
			p.scaleUps++
			lowSince = time.Time{}
			p.log.Debug("scaling up", "target", p.target, "load", load)
		case want < p.target:
			if lowSince.IsZero() {
				lowSince = now
			} else if now.Sub(lowSince) >= p.cfg.Scale.DownIdle {
				drain = p.leastLoadedReadyLocked()
				if drain != nil {
					p.target--
					p.scaleDown++
					_ = drain.move(Draining)
				}
				lowSince = time.Time{}
			}
		default:
			lowSince = time.Time{}
		}
		p.mu.Unlock()
		if grow {
			p.poke()
		}
		if drain != nil {
			p.log.Debug("scaling down: draining", "instance", drain.name, "load", load)
			p.wg.Add(1)
			go p.retire(drain)
		}
	}
}

// leastLoadedReadyLocked is the ready instance with the least load, the
// newest of equals (nil if fewer than two are ready: the pool never
// drains its last ready instance).
func (p *Pool) leastLoadedReadyLocked() *Instance {
	var best *Instance
	ready := 0
	for _, inst := range p.insts {
		if inst.State() != Ready || inst.node.Err() != nil || inst.isHung() {
			continue
		}
		ready++
		if best == nil || inst.load() <= best.load() {
			best = inst
		}
	}
	if ready < 2 {
		return nil
	}
	return best
}

// retire waits for a draining instance's invocations to end (at most
// DrainTimeout), then stops it; its watch goroutine sees a stop, not a
// crash, removes it and releases it.
func (p *Pool) retire(inst *Instance) {
	defer p.wg.Done()
	deadline := p.cfg.Clock.Now().Add(p.cfg.Scale.DrainTimeout)
	for inst.load() > 0 && inst.node.Err() == nil && p.cfg.Clock.Now().Before(deadline) {
		select {
		case <-p.stop:
			return // Drain/Close stop it
		case <-inst.node.Done():
		case <-p.cfg.Clock.After(20 * time.Millisecond):
		}
	}
	if inst.move(Stopped) == nil {
		inst.kill()
	}
}

// ScaleStatus is a pool's size and load for status and metrics.
type ScaleStatus struct {
	Min        int `json:"min"`
	Max        int `json:"max"`
	Target     int `json:"target"`
	Load       int `json:"load"`    // invocations open or on their way
	Waiting    int `json:"waiting"` // acquires queued for want of a ready instance
	ScaleUps   int `json:"scale_ups"`
	ScaleDowns int `json:"scale_downs"`
}

func (p *Pool) scaleStatusLocked() ScaleStatus {
	st := ScaleStatus{Min: p.cfg.Warm, Max: p.cfg.Max, Target: p.target, Waiting: p.waiting, ScaleUps: p.scaleUps, ScaleDowns: p.scaleDown}
	for _, inst := range p.insts {
		st.Load += inst.load()
	}
	return st
}
