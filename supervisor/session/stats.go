package session

import (
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/rspp/rspp/kernel"
)

// TypeSessionStats is the record the driver appends to the timeline once
// a session has closed (after its session_close): every non-zero counter
// of the kernel's Stats and of the driver itself as attrs, snake_case
// (dropped_node_events: node output dropped because the session's inbox
// was full; pending_inputs_dropped: inputs dropped while an invocation
// waited to open; post_refused: playout signals the kernel refused; the
// kernel's gateway, lane and fence counters). The
// kernel does not make it (Seq 0), so replay does not compare it; metrics
// (supervisor/telemetry) sum it per counter.
const TypeSessionStats = "session_stats"

// driverCounters are the session driver's own counters.
type driverCounters struct {
	droppedNodeEvents, pendingInputsDropped, postRefused int64
}

// statsRecord is a closed session's TypeSessionStats record.
func statsRecord(session string, now int64, k kernel.Stats, d driverCounters) kernel.TimelineRecord {
	attrs := map[string]string{}
	v := reflect.ValueOf(k)
	for i := range v.NumField() {
		var n int64
		switch f := v.Field(i); f.Kind() {
		case reflect.Uint64:
			n = int64(f.Uint())
		case reflect.Int:
			n = f.Int()
		default:
			continue
		}
		if n != 0 {
			attrs[snake(v.Type().Field(i).Name)] = strconv.FormatInt(n, 10)
		}
	}
	for name, n := range map[string]int64{"dropped_node_events": d.droppedNodeEvents, "pending_inputs_dropped": d.pendingInputsDropped, "post_refused": d.postRefused} {
		if n != 0 {
			attrs[name] = strconv.FormatInt(n, 10)
		}
	}
	return kernel.TimelineRecord{SessionID: session, Type: TypeSessionStats, MonoNanos: now, Attrs: attrs}
}

// snake turns a Go field name into its snake_case record attr
// (MaxEdgeDepth -> max_edge_depth).
func snake(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
