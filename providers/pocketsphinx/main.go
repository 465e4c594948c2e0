// Command pocketsphinx is the pocketsphinx STT provider plugin: a thin main
// around package sphinx, served over the plugin boundary by
// externalnode.Serve. Its version can be overridden at link time:
//
//	go build -ldflags "-X main.version=0.8.1-test" ./providers/pocketsphinx
package main

import (
	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/providers/pocketsphinx/sphinx"
)

// version is the reported provider version (override with -ldflags -X).
var version = "0.8.0"

func main() { externalnode.Serve(sphinx.New(version)) }
