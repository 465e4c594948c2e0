// Command rules is the LLM stand-in provider plugin: a local, deterministic
// reply table (package ruleset), not a language model. It lets the voice
// agent pipeline run offline and reproducibly. Its version can be overridden
// at link time:
//
//	go build -ldflags "-X main.version=1.0.1-test" ./providers/rules
package main

import (
	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/providers/rules/ruleset"
)

// version is the reported provider version (override with -ldflags -X).
var version = "1.0.0"

func main() { externalnode.Serve(ruleset.New(version)) }
