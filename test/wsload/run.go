package wsload

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Config is a load run: Clients simulated users against one server.
type Config struct {
	URL        string
	Clients    int
	Utterances []Utterance
	// Duration each client speaks for (then it drains and stops).
	Duration     time.Duration
	Gap          time.Duration
	BargeInEvery int
	BargeInAfter time.Duration
	ReplyTimeout time.Duration
	DrainTimeout time.Duration
	// Ramp spreads the clients' starts over this long, so their utterances
	// do not all begin in the same 20 ms (default: one second).
	Ramp   time.Duration
	Tenant string
}

// Run starts cfg.Clients clients at once (spread over cfg.Ramp), waits for
// all of them and reports what they measured. Client i starts with
// utterance i mod len(cfg.Utterances).
func Run(ctx context.Context, cfg Config) (*Report, []*ClientResult) {
	if cfg.Ramp == 0 {
		cfg.Ramp = time.Second
	}
	results := make([]*ClientResult, cfg.Clients)
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			delay := time.Duration(0)
			if cfg.Clients > 1 {
				delay = cfg.Ramp * time.Duration(i) / time.Duration(cfg.Clients)
			}
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				results[i] = &ClientResult{Err: fmt.Errorf("not started: %w", ctx.Err())}
				return
			}
			results[i] = RunClient(ctx, ClientConfig{
				URL: cfg.URL, Utterances: cfg.Utterances, First: i, Gap: cfg.Gap,
				BargeInEvery: cfg.BargeInEvery, BargeInAfter: cfg.BargeInAfter,
				ReplyTimeout: cfg.ReplyTimeout, Duration: cfg.Duration, DrainTimeout: cfg.DrainTimeout,
				Tenant: cfg.Tenant,
			})
		}()
	}
	wg.Wait()
	rep := Summarize(results)
	rep.URL, rep.Clients, rep.Duration = cfg.URL, cfg.Clients, cfg.Duration.String()
	return rep, results
}
