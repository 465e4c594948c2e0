// Package browser drives Debian's Chromium headless (never a downloaded
// browser) against the page of the WebSocket transport
// (transports/websocket/web): the page's audio worklets on their own, and
// the whole live path against a real `rspp serve --listen` with the real
// plugin pipeline, a spoken WAV as the fake microphone, and what the page
// played decoded back with pocketsphinx.
//
// Chromium comes from apt (`apt-get install -y chromium`; `make test-deps`
// and .ci/run install it). Without it every test here skips, saying so.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumDefault is where Debian's chromium package puts the browser.
const chromiumDefault = "/usr/bin/chromium"

// requireChromium returns the browser to drive ($RSPP_CHROMIUM or
// Debian's), or skips the test saying how to install it.
func requireChromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("RSPP_CHROMIUM")
	if path == "" {
		path = chromiumDefault
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Skipf("browser test needs Debian's Chromium at %s (%v): install it with `apt-get install -y chromium` as root, or run `make test-deps`", path, err)
	}
	return path
}

// newBrowser starts a headless Chromium with a fake microphone that plays
// micWAV (none when empty) and returns a context of its first tab. The
// browser is closed, and its process reaped, when the test ends. The page's
// console output and uncaught exceptions go to the test log.
func newBrowser(t *testing.T, micWAV string) context.Context {
	t.Helper()
	path := requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in a container: Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 1000),
	)
	if micWAV != "" {
		opts = append(opts, chromedp.Flag("use-file-for-fake-audio-capture", micWAV))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)

	var (
		mu    sync.Mutex
		ended bool
	)
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !ended {
			t.Logf(format, args...)
		}
	}
	// Subscriptions start the browser; they end with ctx.
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ev, err := range console {
			if err != nil {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			logf("page console.%s: %s", ev.Type, strings.Join(parts, " "))
		}
	}()
	go func() {
		defer wg.Done()
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			logf("page exception: %s (line %d)", msg, d.LineNumber)
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		wg.Wait()
		mu.Lock()
		ended = true
		mu.Unlock()
	})
	return ctx
}

// evaluate runs a JavaScript expression (awaiting it if it is a promise)
// and decodes its value into T, failing the test on error.
func evaluate[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", expr, err)
	}
	return v
}

// waitFor polls cond every 100 ms until it returns true or limit passes;
// on timeout it fails the test with what describe says about the state.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; %s", limit, what, describe())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// outDir is where a test leaves what a person may want to look at after
// it (screenshots, the audio the page played): $RSPP_TEST_OUT, or
// test/browser/out (git-ignored), in a directory per test.
func outDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("RSPP_TEST_OUT")
	if base == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		base = filepath.Join(wd, "out")
	}
	dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("output dir: %v", err)
	}
	return dir
}

// screenshot saves a full-page PNG of the tab under outDir and logs its path.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(outDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return path
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
