package config

import (
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/record"
)

// Timeline configures the replay evidence (RK-11, OR-02):
//
//	timeline:
//	  level: full           # full (default: inputs too, enough to replay) or control
//	  buffer: 4MiB          # encoded records waiting for the writer
//	  session_budget: 32MiB # full-level evidence per session before it downgrades to control
//	  flush: 50ms           # how often the writer writes at the latest
type Timeline struct {
	Level string `yaml:"level"`
	// Buffer bounds what waits for the file writer; past it input records
	// are dropped (counted, marked), never control records.
	Buffer ByteSize `yaml:"buffer"`
	// SessionBudget bounds the bytes of recorded inputs per session: the
	// input reaching it is the last recorded, and the session goes on at
	// level control (deterministic: counted in recorded bytes only).
	// Default 8 x Buffer, so that a tiny buffer downgrades early.
	SessionBudget ByteSize `yaml:"session_budget"`
	Flush         Duration `yaml:"flush"`
}

// Default timeline writer buffer (session.DefaultTimelineBuffer).
const defaultTimelineBuffer = 4 << 20

func (c *Config) validateTimeline() error {
	t := c.Timeline
	switch t.Level {
	case "", kernel.LevelFull, kernel.LevelControl:
	default:
		return c.errf("timeline.level", "must be full or control, got %q", t.Level)
	}
	if t.Buffer < 0 {
		return c.errf("timeline.buffer", "must be positive")
	}
	if t.SessionBudget < 0 {
		return c.errf("timeline.session_budget", "must be positive")
	}
	if t.Flush < 0 {
		return c.errf("timeline.flush", "must be positive")
	}
	return nil
}

// TimelineBuffer is the writer's buffer in bytes, default filled in.
func (c *Config) TimelineBuffer() int {
	if c.Timeline.Buffer > 0 {
		return int(c.Timeline.Buffer)
	}
	return defaultTimelineBuffer
}

// TimelineFlush is the writer's flush interval (0: the writer's default).
func (c *Config) TimelineFlush() time.Duration { return time.Duration(c.Timeline.Flush) }

// Recording is every session's recording policy.
func (c *Config) Recording() record.Policy {
	p := record.Policy{Level: c.Timeline.Level, Budget: int64(c.Timeline.SessionBudget)}
	if p.Level == "" {
		p.Level = kernel.LevelFull
	}
	if p.Budget == 0 {
		p.Budget = 8 * int64(c.TimelineBuffer())
	}
	return p
}
