// Command flite is the Flite TTS provider plugin (Debian's flite): a second
// offline speech engine beside espeak, so that provider switch and
// fallback run between two real engines. A thin main around package
// voice, served over the plugin boundary by externalnode.Serve.
package main

import (
	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/providers/flite/voice"
)

// version is the reported provider version (override with -ldflags -X).
var version = "2.2.0"

func main() { externalnode.Serve(voice.New(version)) }
