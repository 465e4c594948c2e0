package wav

// Frames splits pcm into FrameBytes-long frames; the last one is padded with
// silence. The frames are fresh copies, never aliasing pcm. Empty pcm gives
// no frames.
func Frames(pcm []byte) [][]byte {
	var out [][]byte
	var f Framer
	f.Write(pcm, func(fr []byte) error { out = append(out, fr); return nil })
	f.Flush(func(fr []byte) error { out = append(out, fr); return nil })
	return out
}

// Framer cuts a byte stream (PCM arriving in arbitrary chunks, e.g. from a
// pipe) into FrameBytes-long frames. The zero value is ready to use. Every
// frame handed to emit is a fresh slice the receiver may keep.
type Framer struct {
	buf []byte
}

// Write appends b and calls emit for each complete frame. It stops at the
// first emit error and returns it.
func (f *Framer) Write(b []byte, emit func(frame []byte) error) error {
	for len(b) > 0 {
		if f.buf == nil {
			f.buf = make([]byte, 0, FrameBytes)
		}
		n := min(FrameBytes-len(f.buf), len(b))
		f.buf = append(f.buf, b[:n]...)
		b = b[n:]
		if len(f.buf) == FrameBytes {
			fr := f.buf
			f.buf = nil
			if err := emit(fr); err != nil {
				return err
			}
		}
	}
	return nil
}

// pending is the number of buffered bytes not yet emitted.
func (f *Framer) pending() int { return len(f.buf) }

// Flush emits the buffered partial frame, padded with silence to
// FrameBytes; it does nothing when no bytes are pending.
func (f *Framer) Flush(emit func(frame []byte) error) error {
	if len(f.buf) == 0 {
		return nil
	}
	fr := f.buf[:FrameBytes] // capacity is FrameBytes
	clear(fr[len(f.buf):])
	f.buf = nil
	return emit(fr)
}
