// Command espeak is the espeak-ng TTS provider plugin: a thin main around
// package synth, served over the plugin boundary by externalnode.Serve.
//
// The version it reports is the package-level variable version, settable at
// link time so a test can build a second binary reporting another version
// (e.g. to exercise a hot upgrade):
//
//	go build -ldflags "-X main.version=1.52.0-test" ./providers/espeak
package main

import (
	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/providers/espeak/synth"
)

// version is the reported provider version (override with -ldflags -X).
var version = "1.51.0"

func main() { externalnode.Serve(synth.New(version)) }
