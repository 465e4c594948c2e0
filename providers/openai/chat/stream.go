package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
)

type usage struct {
	ok                 bool
	prompt, completion int64
}

var (
	errStalled        = errors.New("stalled")
	errRequestTimeout = errors.New("request timeout")
)

// stream makes one streaming request and calls delta with each piece of
// text as it arrives. A stall (no response, or no chunk, for the stall
// timeout) or the request timeout cancels the request, which closes its
// connection. Failures come back as *Error; delta's own error is returned
// as is.
func (st *settings) stream(ctx context.Context, params openai.ChatCompletionNewParams, delta func(string) error) (usage, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rctx, stopTimeout := context.WithTimeoutCause(rctx, st.reqTimeout, errRequestTimeout)
	defer stopTimeout()
	stall := time.AfterFunc(st.stall, func() { cancel(errStalled) })
	defer stall.Stop()

	s := st.svc.NewStreaming(rctx, params)
	defer s.Close()
	var (
		use    usage
		deltaE error
	)
	for s.Next() {
		// The stall clock is the endpoint's: it stops while we hand the
		// chunk on (an emit may wait for the host's flow control).
		stall.Stop()
		chunk := s.Current()
		if chunk.JSON.Usage.Valid() && (chunk.Usage.PromptTokens > 0 || chunk.Usage.CompletionTokens > 0) {
			use = usage{ok: true, prompt: chunk.Usage.PromptTokens, completion: chunk.Usage.CompletionTokens}
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 || ch.Delta.Content == "" {
				continue
			}
			if err := delta(ch.Delta.Content); err != nil {
				deltaE = err
				cancel(err)
				break
			}
		}
		if deltaE != nil {
			break
		}
		stall.Reset(st.stall)
	}
	if deltaE != nil {
		return use, deltaE
	}
	err := s.Err()
	if err == nil {
		return use, nil
	}
	if ctx.Err() != nil {
		return use, ctx.Err() // cancelled by the caller: not an upstream failure
	}
	return use, classify(err, context.Cause(rctx), st)
}

// classify turns what the library or the transport returned into *Error.
func classify(err, cause error, st *settings) *Error {
	var apiErr *openai.Error
	switch {
	case errors.Is(cause, errStalled):
		return &Error{Kind: ErrUpstreamTimeout, Msg: fmt.Sprintf("no data for %s", st.stall)}
	case errors.Is(cause, errRequestTimeout):
		return &Error{Kind: ErrUpstreamTimeout, Msg: fmt.Sprintf("request took longer than %s", st.reqTimeout)}
	case errors.As(err, &apiErr):
		kind, _ := kindOfStatus(apiErr.StatusCode)
		e := &Error{Kind: kind, Status: apiErr.StatusCode, Msg: apiMessage(apiErr)}
		if apiErr.Response != nil {
			e.RetryAfter = retryAfter(apiErr.Response.Header, time.Now())
		}
		return e
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) || strings.Contains(err.Error(), "received error while streaming") {
		return &Error{Kind: ErrUpstream, Msg: "malformed stream: " + err.Error()}
	}
	return &Error{Kind: ErrUpstream, Msg: "connection: " + err.Error()}
}

// apiMessage is the endpoint's own error message, bounded; never headers.
func apiMessage(e *openai.Error) string {
	m := e.Message
	if len(m) > 200 {
		m = m[:200] + "..."
	}
	return m
}

// retryAfter reads Retry-After (seconds or an HTTP date) and the
// retry-after-ms extension some endpoints send.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms := h.Get("Retry-After-Ms"); ms != "" {
		if v, err := strconv.ParseFloat(ms, 64); err == nil && v > 0 {
			return time.Duration(v * float64(time.Millisecond))
		}
	}
	ra := h.Get("Retry-After")
	if ra == "" {
		return 0
	}
	if v, err := strconv.ParseFloat(ra, 64); err == nil && v >= 0 {
		return time.Duration(v * float64(time.Second))
	}
	if t, err := http.ParseTime(ra); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
