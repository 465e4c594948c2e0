// Package openaitest is an OpenAI-compatible Chat Completions server for
// tests and benchmarks of the openai provider: it streams a reply as
// server-sent events at a set token pace and can be told to fail the next
// requests in the ways real endpoints do (429 with Retry-After, 500, a
// stall, a malformed chunk, a dropped connection). It records what it was
// sent and when a client closed a stream, so a test can assert that a
// cancel reached the server.
//
// It is a test double of the upstream endpoint, not of anything in RSPP.
package openaitest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultKind is what the server does to one request.
type FaultKind int

const (
	// Normal streams the reply.
	Normal FaultKind = iota
	// Status answers with Fault.Status (and Retry-After if set) and an
	// OpenAI-shaped error body.
	Status
	// Stall sends the headers and Fault.After tokens, then nothing more
	// until the client goes away.
	Stall
	// Malformed sends Fault.After tokens, then a chunk that is not JSON.
	Malformed
	// Drop sends Fault.After tokens, then closes the connection mid-stream.
	Drop
)

// Fault is the scripted behaviour of one request.
type Fault struct {
	Kind       FaultKind
	Status     int           // Status
	RetryAfter time.Duration // Status: sent as Retry-After (whole seconds) and Retry-After-Ms
	After      int           // Stall, Malformed, Drop: tokens sent first
}

// Request is what a client sent.
type Request struct {
	Auth     string // the Authorization header
	Model    string
	Messages []Message
	Stream   bool
	At       time.Time
}

// Message is one chat message of a request.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Close is a stream the client closed before the server finished it.
type Close struct {
	At     time.Time // when the server saw it
	Tokens int       // tokens sent before it
}

// Server is a running test endpoint. Its BaseURL ends in /v1.
type Server struct {
	BaseURL string
	// Reply gives the reply to the last user message (default: echoes it).
	Reply func(user string) string
	// TokenDelay paces the tokens (default 20 ms: ~50 tokens/s).
	TokenDelay time.Duration
	// FirstTokenDelay is the wait before the first token (default
	// TokenDelay), standing for the model's prompt processing.
	FirstTokenDelay time.Duration
	// Key, if set, is the only accepted bearer token (401 otherwise).
	Key string

	srv *http.Server
	ln  net.Listener
	wg  sync.WaitGroup

	mu       sync.Mutex
	script   []Fault
	requests []Request
	closes   []Close
	closed   chan Close
	firstTok []time.Duration // time from request to first token sent, per streamed request
}

// Start listens on a loopback port and serves until Close.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, BaseURL: "http://" + ln.Addr().String() + "/v1", TokenDelay: 20 * time.Millisecond, closed: make(chan Close, 64)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.completions)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Close stops the server and ends every stream in progress.
func (s *Server) Close() {
	_ = s.srv.Close()
	s.wg.Wait()
}

// Script queues faults for the next requests, one each, in order; requests
// past the script are served normally.
func (s *Server) Script(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, f...)
}

// Requests returns what was received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Closes returns the streams the client closed early.
func (s *Server) Closes() []Close {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Close(nil), s.closes...)
}

// Closed delivers each early close as the server sees it.
func (s *Server) Closed() <-chan Close { return s.closed }

// FirstTokenTimes are, per streamed reply, the server-side time from the
// request's arrival to its first token written (the baseline of a
// time-to-first-token measurement).
func (s *Server) FirstTokenTimes() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.firstTok...)
}

type chatRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	Stream   bool      `json:"stream"`
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "body is not JSON: "+err.Error())
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Auth: r.Header.Get("Authorization"), Model: req.Model, Messages: req.Messages, Stream: req.Stream, At: at})
	f := Fault{Kind: Normal}
	if len(s.script) > 0 {
		f = s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()
	if s.Key != "" && r.Header.Get("Authorization") != "Bearer "+s.Key {
		writeError(w, http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided")
		return
	}
	if req.Model == "" || len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "model and messages are required")
		return
	}
	if f.Kind == Status {
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
			w.Header().Set("Retry-After-Ms", strconv.FormatInt(f.RetryAfter.Milliseconds(), 10))
		}
		writeError(w, f.Status, "server_error", http.StatusText(f.Status))
		return
	}
	user := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			user = m.Content
		}
	}
	reply := user
	if s.Reply != nil {
		reply = s.Reply(user)
	}
	if !req.Stream {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "this test server streams only")
		return
	}
	s.streamReply(w, r, req.Model, reply, f, at)
}

// tokens splits a reply into word tokens that concatenate back to it.
func tokens(reply string) []string {
	var out []string
	for i, w := range strings.Fields(reply) {
		if i > 0 {
			w = " " + w
		}
		out = append(out, w)
	}
	return out
}

func (s *Server) streamReply(w http.ResponseWriter, r *http.Request, model, reply string, f Fault, at time.Time) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if fl != nil {
		fl.Flush()
	}
	id := fmt.Sprintf("chatcmpl-%d", at.UnixNano())
	chunk := func(content string, finish string) []byte {
		delta := map[string]any{}
		if content != "" {
			delta["content"] = content
		}
		choice := map[string]any{"index": 0, "delta": delta, "finish_reason": nil}
		if finish != "" {
			choice["finish_reason"] = finish
		}
		b, _ := json.Marshal(map[string]any{"id": id, "object": "chat.completion.chunk", "created": at.Unix(), "model": model, "choices": []any{choice}})
		return b
	}
	send := func(data []byte) bool {
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	sent := 0
	gone := func() {
		c := Close{At: time.Now(), Tokens: sent}
		s.mu.Lock()
		s.closes = append(s.closes, c)
		s.mu.Unlock()
		select {
		case s.closed <- c:
		default:
		}
	}
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			gone()
			return false
		case <-t.C:
			return true
		}
	}
	toks := tokens(reply)
	first := s.FirstTokenDelay
	if first == 0 {
		first = s.TokenDelay
	}
	for i, tok := range toks {
		if f.Kind != Normal && i == f.After {
			break
		}
		d := s.TokenDelay
		if i == 0 {
			d = first
		}
		if !wait(d) {
			return
		}
		if !send(chunk(tok, "")) {
			gone()
			return
		}
		if i == 0 {
			s.mu.Lock()
			s.firstTok = append(s.firstTok, time.Since(at))
			s.mu.Unlock()
		}
		sent++
	}
	switch f.Kind {
	case Stall:
		<-r.Context().Done()
		gone()
		return
	case Malformed:
		send([]byte(`{"id": "` + id + `", "choices": [{"index": 0, "delta": {"content": "bro`))
		return
	case Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	}
	send(chunk("", "stop"))
	n := len(toks)
	u, _ := json.Marshal(map[string]any{"id": id, "object": "chat.completion.chunk", "created": at.Unix(), "model": model, "choices": []any{},
		"usage": map[string]any{"prompt_tokens": promptTokens(r), "completion_tokens": n, "total_tokens": n + promptTokens(r)}})
	send(u)
	send([]byte("[DONE]"))
}

// promptTokens is a stand-in count: the request's content length / 4.
func promptTokens(r *http.Request) int {
	if r.ContentLength > 0 {
		return int(r.ContentLength/4) + 1
	}
	return 1
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": typ, "param": nil}})
	_, _ = w.Write(b)
}
