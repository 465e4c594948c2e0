// Command openai is the OpenAI-compatible LLM provider plugin (OpenAI,
// vLLM, llama.cpp's server, Ollama...): a thin main around package chat,
// served over the plugin boundary by externalnode.Serve.
package main

import (
	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/providers/openai/chat"
)

// version is the reported provider version (override with -ldflags -X).
var version = "1.0.0"

func main() { externalnode.Serve(chat.New(version)) }
