package opuscodec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// BinaryName is the helper's file name, looked up beside the running
// executable, then on PATH.
const BinaryName = "rspp-opus"

// FindBinary returns the helper to use: explicit if set, else $RSPP_OPUS,
// else rspp-opus beside the running executable, else on PATH.
func FindBinary(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p := os.Getenv("RSPP_OPUS"); p != "" {
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), BinaryName)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(BinaryName)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found beside the executable or on PATH (make build builds bin/%s; it needs libopus-dev): %w",
			ErrCodecExited, BinaryName, BinaryName, err)
	}
	return p, nil
}

// Client is one helper process in one mode. Code is safe for concurrent
// use (calls are serialised: the helper answers in order).
type Client struct {
	mode string
	cmd  *exec.Cmd
	in   io.WriteCloser
	w    *bufio.Writer
	out  *bufio.Reader

	mu     sync.Mutex
	buf    []byte
	dead   error
	waited chan struct{}
	once   sync.Once
}

// Start runs the helper bin in mode (ModeDecode, ModeEncode or
// ModeEncodeStereo48). The helper ends when its stdin ends: at Close, and
// when this process dies (the kernel closes the pipe; it is close-on-exec,
// so no other child holds it). No Pdeathsig: that fires when the forking
// thread exits, which for a goroutine's thread is not this process's end.
func Start(ctx context.Context, bin, mode string) (*Client, error) {
	if mode != ModeDecode && mode != ModeEncode && mode != ModeEncodeStereo48 {
		return nil, fmt.Errorf("opus codec: mode %q: want %s or %s", mode, ModeDecode, ModeEncode)
	}
	cmd := exec.CommandContext(ctx, bin, mode)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrCodecExited, bin, err)
	}
	c := &Client{mode: mode, cmd: cmd, in: in, w: bufio.NewWriter(in), out: bufio.NewReader(out), waited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.waited)
	}()
	return c, nil
}

// Code sends one payload and returns the helper's output. The result is
// valid until the next call. An error wrapping ErrCodec refused only this
// payload; one wrapping ErrCodecExited ends the client.
func (c *Client) Code(p []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return nil, c.dead
	}
	if err := writeFrame(c.w, 0, false, p); err == nil {
		err = c.w.Flush()
		if err != nil {
			return nil, c.die(err)
		}
	} else {
		return nil, c.die(err)
	}
	status, out, err := readReply(c.out, c.buf)
	if err != nil {
		return nil, c.die(err)
	}
	c.buf = out[:0]
	if status != 0 {
		return nil, fmt.Errorf("%w (%s): %s", ErrCodec, c.mode, out)
	}
	return out, nil
}

func (c *Client) die(err error) error {
	c.dead = fmt.Errorf("%w (%s): %w", ErrCodecExited, c.mode, err)
	return c.dead
}

// Close ends the helper and waits for it. Safe to call twice.
func (c *Client) Close() error {
	c.once.Do(func() {
		_ = c.in.Close()
	})
	<-c.waited
	c.mu.Lock()
	if c.dead == nil {
		c.dead = fmt.Errorf("%w (%s): closed", ErrCodecExited, c.mode)
	}
	c.mu.Unlock()
	return nil
}

// kill ends the helper at once (tests of a dead codec).
func (c *Client) kill() { _ = c.cmd.Process.Kill() }

// IsExited says whether err means the helper is gone.
func IsExited(err error) bool { return errors.Is(err, ErrCodecExited) }
