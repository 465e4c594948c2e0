package supervisor_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/internal/testrt"
)

// SIGHUP's Reload hot-upgrades exactly the providers whose settings
// changed and leaves the others on their pools.
func TestReloadUpgradesChangedProviders(t *testing.T) {
	cfgPath := testplugin.Config(t, t.TempDir(), nil, "")
	rt := testrt.Start(t, cfgPath, nil)
	before := map[string]string{}
	for _, p := range []string{"stt", "llm", "tts"} {
		before[p] = rt.Pool(p).Key()
	}
	raw, _ := os.ReadFile(cfgPath)
	changed := strings.Replace(string(raw), "config: {role: llm}", "config: {role: llm, hang_file: /nonexistent}", 1)
	if err := os.WriteFile(cfgPath, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := rt.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Provider != "llm" || res[0].OldKey != before["llm"] || res[0].NewKey == before["llm"] {
		t.Fatalf("reload result %+v", res)
	}
	for _, p := range []string{"stt", "tts"} {
		if rt.Pool(p).Key() != before[p] {
			t.Errorf("unchanged provider %s was replaced", p)
		}
	}
	if b, _ := rt.Binding("llm"); b.Pool != res[0].NewKey {
		t.Fatalf("llm binding %+v after reload", b)
	}
}
