package supervisor_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/pool"

	"github.com/rspp/rspp/supervisor/config"
)

// Through the runtime: the provider's config kind is what is checked.
func TestRuntimeRefusesKindMismatch(t *testing.T) {
	dir := t.TempDir()
	path := testplugin.Config(t, dir, nil, "")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(raw), testplugin.Arg+", llm]", testplugin.Arg+", custom]", 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := supervisor.Start(context.Background(), cfg, supervisor.Options{})
	if err == nil {
		rt.Close()
		t.Fatal("runtime started with an llm provider whose node declares custom")
	}
	var km *pool.KindMismatchError
	if !errors.As(err, &km) || km.Provider != "llm" || km.Configured != "llm" || km.Declared != "custom" {
		t.Fatalf("Start: %v, want a KindMismatchError for provider llm (llm vs custom)", err)
	}
}
