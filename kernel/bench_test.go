package kernel_test

import (
	"testing"

	"github.com/rspp/rspp/kernel/kbench"
)

// Kernel quality-gate benchmarks; the bodies live in kernel/kbench so that
// tooling can run them through kbench.Run.

func BenchmarkTurnOpen(b *testing.B)    { kbench.TurnOpen(b) }
func BenchmarkCancelFence(b *testing.B) { kbench.CancelFence(b) }

func BenchmarkDataEvent(b *testing.B) {
	b.Run("sessions=1", kbench.DataEvent(1))
	b.Run("sessions=100", kbench.DataEvent(100))
	b.Run("sessions=1000", kbench.DataEvent(1000))
}
