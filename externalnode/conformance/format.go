package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText prints the report for people: one line per check, then a
// verdict naming the checks that did not pass.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "node %s", r.Binary)
	if r.Name != "" {
		fmt.Fprintf(&b, " (%s %s@%s)", r.Kind, r.Name, r.Version)
	}
	b.WriteString("\n")
	for _, res := range r.Results {
		detail := strings.ReplaceAll(res.Detail, "\n", "\n      ")
		fmt.Fprintf(&b, "%-4s  %-20s %7s  %s\n", strings.ToUpper(string(res.Status)), res.Check, res.Elapsed.Round(time.Millisecond), detail)
	}
	if failed := r.Failed(); len(failed) > 0 {
		fmt.Fprintf(&b, "FAIL: %d of %d checks did not pass: %s\n", len(failed), len(r.Results), strings.Join(failed, ", "))
	} else {
		fmt.Fprintf(&b, "OK: all %d checks passed\n", len(r.Results))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as one JSON object with an "ok" verdict.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		OK bool `json:"ok"`
		*Report
	}{r.OK(), r})
}
