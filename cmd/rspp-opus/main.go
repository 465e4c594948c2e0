// Command rspp-opus is the LiveKit transport's Opus codec helper: the only
// cgo code of the runtime, kept out of the rspp binary (see
// transports/livekit/opuscodec). Usage: rspp-opus decode|encode, framed
// requests on stdin, replies on stdout.
package main

import (
	"fmt"
	"os"

	"github.com/rspp/rspp/transports/livekit/opuscodec"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: rspp-opus decode|encode (framed requests on stdin; see transports/livekit/opuscodec)")
		os.Exit(2)
	}
	if err := opuscodec.Serve(os.Args[1], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rspp-opus:", err)
		os.Exit(1)
	}
}
