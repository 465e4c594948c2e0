//go:build !cgo

package opuscodec

import (
	"errors"
	"io"
)

// Serve needs cgo (libopus); a helper built without it says so.
func Serve(string, io.Reader, io.Writer) error {
	return errors.New("rspp-opus was built without cgo: build it with CGO_ENABLED=1 (and libopus-dev libopusfile-dev libsoxr-dev pkg-config)")
}
