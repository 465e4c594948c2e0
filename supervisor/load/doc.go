// Package load drives many concurrent scripted sessions through a
// supervisor Runtime: Run feeds utterances (rspp serve --input, the
// capacity benchmarks, the end-to-end tests), RunChaos adds faults (kills,
// hangs, upgrades) and checks that every turn still ended exactly once.
// Stats/Histogram measure latency and egress lateness; TerminalCounter and
// CountTerminals count turn terminals, bounded, from the timeline.
//
// It may import supervisor and its rooms pool and session; the supervisor
// package must not import it.
package load
