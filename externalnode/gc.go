package externalnode

import (
	"fmt"
	"runtime/debug"
	"strconv"
)

// The garbage-collector policy of a node process served by this SDK.
//
// A node keeps a small live heap (a few MiB) and allocates at the rate of
// its frames, so at Go's default GOGC=100 it collects many times a second,
// each cycle scanning the stacks of every invocation's goroutines: at 1,000
// sessions through one speech-to-text instance that was a sixth of the
// instance's CPU. Serve raises GOGC to NodeGCPercent unless the process's
// environment sets GOGC. The larger target is bounded by the instance's
// envelope: the supervisor passes the envelope's memory limit in
// MemoryLimitEnv and Serve sets the runtime's soft memory limit to
// memoryLimitShare of it (unless GOMEMLIMIT is set), so a node whose heap
// nears its limit collects harder instead of meeting the OOM killer.
const (
	// NodeGCPercent is the GOGC a node runs with unless GOGC is set.
	NodeGCPercent = 400
	// MemoryLimitEnv carries the instance's memory limit in bytes (set by
	// the supervisor when the instance has an envelope with one).
	MemoryLimitEnv = "RSPP_MEMORY_LIMIT"
	// memoryLimitShare of the envelope's limit is the Go soft limit: the
	// rest is left to non-heap memory (stacks, runtime, cgo).
	memoryLimitShare = 0.9
)

// gcPolicy is what Serve applies; zero fields leave the runtime's setting.
type gcPolicy struct {
	Percent     int   // GOGC
	MemoryLimit int64 // soft memory limit, bytes
}

// gcPolicyFrom derives the policy from the environment. An unreadable
// MemoryLimitEnv is reported and leaves the memory limit alone.
func gcPolicyFrom(getenv func(string) string) (gcPolicy, error) {
	var p gcPolicy
	if getenv("GOGC") == "" {
		p.Percent = NodeGCPercent
	}
	v := getenv(MemoryLimitEnv)
	if v == "" || getenv("GOMEMLIMIT") != "" {
		return p, nil
	}
	limit, err := strconv.ParseInt(v, 10, 64)
	if err != nil || limit <= 0 {
		return p, fmt.Errorf("%s=%q is not a positive number of bytes; the Go memory limit is left unset", MemoryLimitEnv, v)
	}
	p.MemoryLimit = int64(float64(limit) * memoryLimitShare)
	return p, nil
}

// apply sets the policy on the running process.
func (p gcPolicy) apply() {
	if p.Percent > 0 {
		debug.SetGCPercent(p.Percent)
	}
	if p.MemoryLimit > 0 {
		debug.SetMemoryLimit(p.MemoryLimit)
	}
}
