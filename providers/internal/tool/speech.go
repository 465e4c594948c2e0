package tool

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/rspp/rspp/transports/wav"
)

// StreamSpeech runs a speech program that writes a WAV to stdout (program
// with args) into sox, which converts it to the runtime's PCM (16 kHz mono
// s16le, no dither: the same text gives the same PCM every run), and calls
// chunk with the PCM as it comes out, in arbitrary-sized pieces that chunk
// may keep. If chunk returns an error or ctx is cancelled, both children
// are killed and reaped and that error (or ctx.Err()) is returned; else
// the first failure in the pipeline, which explains the rest.
func StreamSpeech(ctx context.Context, sox, program string, args []string, chunk func(pcm []byte) error) error {
	ctx, kill := context.WithCancel(ctx)
	defer kill()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	speak := Command(ctx, program, args...)
	speak.Stdout = w
	conv := Command(ctx, sox, "-t", "wav", "-", "-D",
		"-r", strconv.Itoa(wav.SampleRate), "-c", strconv.Itoa(wav.Channels),
		"-b", strconv.Itoa(wav.BitsPerSample), "-e", "signed-integer", "-t", "raw", "-")
	conv.Stdin = r
	out, err := conv.StdoutPipe()
	if err != nil {
		r.Close()
		w.Close()
		return err
	}
	if err := speak.Start(); err != nil {
		r.Close()
		w.Close()
		return speak.Err(ctx, err)
	}
	if err := conv.Start(); err != nil {
		r.Close()
		w.Close()
		kill()
		speak.Wait()
		return conv.Err(ctx, err)
	}
	// The children hold their own copies of the pipe ends now.
	r.Close()
	w.Close()
	readErr := pump(ctx, out, chunk)
	if readErr != nil {
		kill()
	}
	convErr := conv.Err(ctx, conv.Wait())
	speakErr := speak.Err(ctx, speak.Wait())
	switch {
	case readErr != nil:
		return readErr
	case speakErr != nil:
		return speakErr
	default:
		return convErr
	}
}

func pump(ctx context.Context, out io.Reader, chunk func([]byte) error) error {
	for {
		buf := make([]byte, 4096) // chunk may keep it
		n, err := out.Read(buf)
		if n > 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if cerr := chunk(buf[:n]); cerr != nil {
				return cerr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}
