// Package chat is the engine of the openai LLM provider: it streams a
// Chat Completions reply from any OpenAI-compatible endpoint (OpenAI,
// vLLM, llama.cpp's server, Ollama) and emits each piece of text as a
// text.delta the moment it arrives, then one text.final.
//
// It owns the conversation history of each session (bounded), the retry
// of a failed request (429 and 5xx, honouring Retry-After, never past the
// invocation's deadline) and the typed failure of one that cannot be
// saved (Err* kinds). Cancelling an invocation closes its HTTP stream at
// once. It never logs the API key nor puts it in an error: the config
// names the environment variable that holds it.
package chat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/internal/textin"
	"github.com/rspp/rspp/providers/internal/tool"
)

// Name is the provider's name.
const Name = "openai"

// Defaults.
const (
	DefaultBaseURL        = "https://api.openai.com/v1"
	DefaultRequestTimeout = 30 * time.Second
	DefaultStallTimeout   = 10 * time.Second
	DefaultMaxRetries     = 3
	DefaultBackoff        = 250 * time.Millisecond
	DefaultBackoffMax     = 4 * time.Second
	DefaultHistoryTurns   = 8
	DefaultHistorySession = 1024
)

// UsageSignal is the Control.Signal of the telemetry.metric event that
// reports a reply's token usage (for budgets); its Reason reads
// "prompt_tokens=N completion_tokens=M".
const UsageSignal = "llm.usage"

// Config is the provider's config block.
type Config struct {
	BaseURL      string   `json:"base_url"`    // default https://api.openai.com/v1
	Model        string   `json:"model"`       // required
	APIKeyEnv    string   `json:"api_key_env"` // name of the variable holding the key; "" sends none (local servers)
	SystemPrompt string   `json:"system_prompt"`
	Temperature  *float64 `json:"temperature"`
	MaxTokens    int      `json:"max_tokens"`
	// RequestTimeout bounds one request, first byte to last (default 30s).
	RequestTimeout string `json:"request_timeout"`
	// StallTimeout bounds the wait for the response and for each chunk
	// after it (default 10s): a stalled stream fails as upstream_timeout.
	StallTimeout string `json:"stall_timeout"`
	// MaxRetries of a 429/5xx/stalled request before any text came
	// (default 3; -1 for none).
	MaxRetries int    `json:"max_retries"`
	Backoff    string `json:"backoff"`     // first retry wait without Retry-After (default 250ms), doubling
	BackoffMax string `json:"backoff_max"` // cap (default 4s)
	// HistoryTurns is how many past exchanges of a session are sent with
	// each request (default 8; -1 keeps none); HistorySessions how many
	// sessions are remembered (default 1024, least recently used dropped).
	HistoryTurns    int `json:"history_turns"`
	HistorySessions int `json:"history_sessions"`
}

// ErrNotConfigured is returned by Invoke before a successful Configure.
var ErrNotConfigured = errors.New("openai: Invoke before Configure")

type settings struct {
	svc        openai.ChatCompletionService
	cfg        Config
	reqTimeout time.Duration
	stall      time.Duration
	backoff    time.Duration
	backoffMax time.Duration
	retries    int
	hist       *histories
}

// Node is the LLM node. Invocations may run concurrently.
type Node struct {
	version string
	cur     atomic.Pointer[settings]
	// HTTPClient, if set before Configure, carries the requests (tests).
	HTTPClient *http.Client
}

// New returns a Node reporting version.
func New(version string) *Node { return &Node{version: version} }

// Info implements externalnode.Node.
func (n *Node) Info() externalnode.Info {
	return externalnode.Info{
		Name:    Name,
		Kind:    "llm",
		Version: n.version,
		Accepts: []eventabi.Type{eventabi.TypeTranscriptFinal, eventabi.TypeTextDelta, eventabi.TypeTextFinal},
		Emits:   []eventabi.Type{eventabi.TypeTextDelta, eventabi.TypeTextFinal, eventabi.TypeMetric},
		Caps:    externalnode.Capabilities{Declared: true, StreamingOutput: true}, // languages: whatever the model speaks
	}
}

func duration(field, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, &tool.ConfigError{Field: field, Reason: fmt.Sprintf("want a positive duration like 250ms or 10s, got %q", s)}
	}
	return d, nil
}

// Configure implements externalnode.Node. It checks the block and reads
// the key from the named variable; it makes no request.
func (n *Node) Configure(ctx context.Context, cfg externalnode.Config) error {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	if c.Model == "" {
		return &tool.ConfigError{Field: "model", Reason: "required (the model name the endpoint serves)"}
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return &tool.ConfigError{Field: "base_url", Reason: fmt.Sprintf("want an http:// or https:// URL, got %q", c.BaseURL)}
	}
	if c.Temperature != nil && (*c.Temperature < 0 || *c.Temperature > 2) {
		return &tool.ConfigError{Field: "temperature", Reason: "must be within 0..2"}
	}
	if c.MaxTokens < 0 {
		return &tool.ConfigError{Field: "max_tokens", Reason: "must not be negative"}
	}
	st := &settings{cfg: c}
	var err error
	if st.reqTimeout, err = duration("request_timeout", c.RequestTimeout, DefaultRequestTimeout); err != nil {
		return err
	}
	if st.stall, err = duration("stall_timeout", c.StallTimeout, DefaultStallTimeout); err != nil {
		return err
	}
	if st.backoff, err = duration("backoff", c.Backoff, DefaultBackoff); err != nil {
		return err
	}
	if st.backoffMax, err = duration("backoff_max", c.BackoffMax, DefaultBackoffMax); err != nil {
		return err
	}
	switch {
	case c.MaxRetries == 0:
		st.retries = DefaultMaxRetries
	case c.MaxRetries < 0:
		st.retries = 0
	default:
		st.retries = c.MaxRetries
	}
	turns, sessions := c.HistoryTurns, c.HistorySessions
	if turns == 0 {
		turns = DefaultHistoryTurns
	}
	if sessions <= 0 {
		sessions = DefaultHistorySession
	}
	st.hist = newHistories(turns, sessions)
	var key string
	if c.APIKeyEnv != "" {
		v, ok := os.LookupEnv(c.APIKeyEnv)
		if !ok || v == "" {
			// Names the variable, never a value.
			return &tool.ConfigError{Field: "api_key_env", Reason: fmt.Sprintf("environment variable %s is not set", c.APIKeyEnv)}
		}
		key = v
	}
	hc := n.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}}
	}
	// The service is built from these options alone: the library's
	// environment defaults (OPENAI_API_KEY, OPENAI_BASE_URL, ...) are not
	// read, so what the config says is what is sent. Retries are ours
	// (budget-aware), not the library's.
	st.svc = openai.NewChatCompletionService(
		option.WithBaseURL(c.BaseURL), option.WithAPIKey(key), option.WithHTTPClient(hc), option.WithMaxRetries(0))
	n.cur.Store(st)
	return nil
}

// Invoke implements externalnode.Node: it reads the user's text until the
// inputs close, sends it with the session's history, streams the reply out
// as text.delta events as they arrive, then one text.final with the whole
// reply and one telemetry.metric with the token usage. A request that
// fails before any text came is retried (429, 5xx, stall) while the
// invocation's deadline allows; once text has gone out, a failure ends the
// invocation (the kernel's policy decides what the turn does).
func (n *Node) Invoke(ctx context.Context, call *externalnode.Call) error {
	st := n.cur.Load()
	if st == nil {
		return ErrNotConfigured
	}
	text, err := textin.Collect(ctx, call.Inputs())
	if err != nil {
		return err
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	past := st.hist.get(call.SessionID)
	msgs := make([]openai.ChatCompletionMessageParamUnion, 0, 2+2*len(past))
	if st.cfg.SystemPrompt != "" {
		msgs = append(msgs, openai.SystemMessage(st.cfg.SystemPrompt))
	}
	for _, ex := range past {
		msgs = append(msgs, openai.UserMessage(ex.user), openai.AssistantMessage(ex.assistant))
	}
	msgs = append(msgs, openai.UserMessage(text))
	params := openai.ChatCompletionNewParams{
		Model:         st.cfg.Model,
		Messages:      msgs,
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	if st.cfg.Temperature != nil {
		params.Temperature = openai.Float(*st.cfg.Temperature)
	}
	if st.cfg.MaxTokens > 0 {
		params.MaxTokens = openai.Int(int64(st.cfg.MaxTokens))
	}
	deadline, hasDeadline := call.Deadline, !call.Deadline.IsZero()
	var reply strings.Builder
	var use usage
	for attempt := 1; ; attempt++ {
		emitted := reply.Len()
		u, err := st.stream(ctx, params, func(delta string) error {
			reply.WriteString(delta)
			return call.EmitText(eventabi.TypeTextDelta, delta, false)
		})
		use = u
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *Error
		if !errors.As(err, &ue) {
			return err // the call's own emit failed
		}
		ue.Attempts = attempt
		retryable := retryable(ue)
		if !retryable || reply.Len() > emitted || attempt > st.retries {
			return ue
		}
		wait := ue.RetryAfter
		if wait <= 0 {
			wait = min(st.backoff<<(attempt-1), st.backoffMax)
		}
		if hasDeadline && time.Now().Add(wait).After(deadline) {
			ue.Msg = strings.TrimSpace(ue.Msg + fmt.Sprintf("; retry in %s would pass the node's deadline", wait.Round(time.Millisecond)))
			return ue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	out := reply.String()
	if err := call.EmitText(eventabi.TypeTextFinal, out, true); err != nil {
		return err
	}
	st.hist.add(call.SessionID, exchange{user: text, assistant: out})
	if use.ok {
		return call.Emit(eventabi.Event{Type: eventabi.TypeMetric, Control: &eventabi.Control{Signal: UsageSignal,
			Reason: "prompt_tokens=" + strconv.FormatInt(use.prompt, 10) + " completion_tokens=" + strconv.FormatInt(use.completion, 10)}})
	}
	return nil
}

// retryable: a later identical request may succeed.
func retryable(e *Error) bool {
	_, again := kindOfStatus(e.Status)
	switch {
	case e.Status != 0:
		return again
	case errors.Is(e.Kind, ErrUpstreamTimeout):
		return true // stalled before any text: ask again
	case errors.Is(e.Kind, ErrUpstream) && e.Msg != "" && strings.HasPrefix(e.Msg, "connection"):
		return true
	}
	return false
}
