package builtin

import (
	"context"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Kernel is the part of a kernel.Session the driver feeds.
type Kernel interface {
	Ready() []kernel.Effect
	OnNodeEvent(invocationID string, ev eventabi.Event) error
	OnInvocationEnd(invocationID string, res kernel.InvocationResult)
	// OnInputsTaken gives an input's edge slot back: in-process nodes
	// take their input synchronously.
	OnInputsTaken(invocationID string, n int)
}

// Pump carries out the kernel's effects for invocations whose pool runs on
// this host, feeding their outputs and ends back into the kernel, until the
// kernel has nothing more for the host. Effects it does not own (egress,
// records, fences, other pools) are returned in order for the caller.
func (h *Host) Pump(ctx context.Context, k Kernel) []kernel.Effect {
	var rest []kernel.Effect
	for {
		effs := k.Ready()
		if len(effs) == 0 {
			return rest
		}
		for _, e := range effs {
			if !h.apply(ctx, k, e) {
				rest = append(rest, e)
			}
		}
	}
}

// apply carries out one effect if it belongs to this host.
func (h *Host) apply(ctx context.Context, k Kernel, e kernel.Effect) bool {
	switch e := e.(type) {
	case kernel.StartInvocation:
		if !h.Serves(e.Binding.Pool) {
			return false
		}
		if err := h.Start(ctx, e); err != nil {
			k.OnInvocationEnd(e.Ref.InvocationID, kernel.InvocationResult{Err: err})
		}
	case kernel.DeliverInput:
		if !h.Owns(e.InvocationID) {
			return false
		}
		k.OnInputsTaken(e.InvocationID, 1)
		if _, ok := h.running[e.InvocationID]; !ok {
			return true // it already ended here: late input is dropped
		}
		out, err := h.Deliver(ctx, e.InvocationID, e.Event)
		h.feed(k, e.InvocationID, out)
		if err != nil {
			h.end(ctx, e.InvocationID)
			k.OnInvocationEnd(e.InvocationID, kernel.InvocationResult{Err: err})
		}
	case kernel.CloseInput:
		if !h.Owns(e.InvocationID) {
			return false
		}
		if _, ok := h.running[e.InvocationID]; !ok {
			return true
		}
		out, err := h.CloseInput(ctx, e.InvocationID)
		h.feed(k, e.InvocationID, out)
		k.OnInvocationEnd(e.InvocationID, kernel.InvocationResult{Err: err})
	case kernel.CancelInvocation:
		if !h.Owns(e.InvocationID) {
			return false
		}
		_ = h.Cancel(ctx, e.InvocationID, e.Reason)
	default:
		return false
	}
	return true
}

func (h *Host) feed(k Kernel, inv string, out []eventabi.Event) {
	for _, ev := range out {
		_ = k.OnNodeEvent(inv, ev) // rejected outputs are counted by the kernel
	}
}
