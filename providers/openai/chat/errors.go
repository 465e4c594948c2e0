package chat

import (
	"errors"
	"fmt"
	"time"
)

// Failure kinds of an upstream call, as the kernel's policy sees them
// (Error.FailureCode crosses the plugin boundary as the invocation
// error's code; errors.Is works on the plugin side).
var (
	// ErrAuth: the endpoint refused the key (401, 403). Not retried.
	ErrAuth = errors.New("auth")
	// ErrRateLimit: 429 that could not be waited out within the budget.
	ErrRateLimit = errors.New("rate_limit")
	// ErrBadRequest: the endpoint refused the request (400, 404, 422...).
	// Not retried: the same request fails the same way.
	ErrBadRequest = errors.New("bad_request")
	// ErrUpstreamTimeout: no response, or no chunk for the stall timeout,
	// or the node's budget ran out while waiting.
	ErrUpstreamTimeout = errors.New("upstream_timeout")
	// ErrUpstream: the endpoint failed (5xx after retries, a malformed
	// chunk, a broken connection).
	ErrUpstream = errors.New("upstream_error")
)

// Error is one failed upstream call. It never carries the API key: the
// request's headers are not part of it.
type Error struct {
	Kind       error         // one of the Err* kinds above
	Status     int           // HTTP status, 0 when none was received
	Attempts   int           // requests made
	RetryAfter time.Duration // what the endpoint asked for (429/503), 0 if nothing
	Msg        string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("openai: %v", e.Kind)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

func (e *Error) Unwrap() error { return e.Kind }

// FailureCode names the kind on the wire (externalnode carries it to the
// host as the invocation error's code).
func (e *Error) FailureCode() string { return e.Kind.Error() }

// kindOfStatus maps an HTTP status to a failure kind and whether a retry
// may help.
func kindOfStatus(status int) (error, bool) {
	switch {
	case status == 401 || status == 403:
		return ErrAuth, false
	case status == 429:
		return ErrRateLimit, true
	case status == 408 || status == 504:
		return ErrUpstreamTimeout, true
	case status >= 500:
		return ErrUpstream, true
	case status >= 400:
		return ErrBadRequest, false
	}
	return ErrUpstream, false
}
