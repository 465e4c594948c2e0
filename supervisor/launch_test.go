package supervisor_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/internal/testrt"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
)

// runtime.plugin_channel reaches every plugin start: under the default
// (peercred) a plugin gets no AutoMTLS certificate, under mtls it does.
func TestPluginChannelFromConfig(t *testing.T) {
	if externalnode.HostUIDEnv != isolation.HostUIDEnv {
		t.Fatalf("the sandbox rewrites %s, the plugin reads %s", isolation.HostUIDEnv, externalnode.HostUIDEnv)
	}
	for _, c := range []struct {
		channel  string
		wantCert bool
	}{{"", false}, {"mtls", true}} {
		dir := t.TempDir()
		cfgPath := testplugin.Config(t, dir, nil, "")
		if c.channel != "" {
			raw, err := os.ReadFile(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			s := strings.Replace(string(raw), "runtime:\n", "runtime:\n  plugin_channel: "+c.channel+"\n", 1)
			if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		rt := testrt.Start(t, cfgPath, nil)
		pids := rt.Pool("tts").Pids()
		if len(pids) == 0 {
			t.Fatal("no tts plugin running")
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pids[0]))
		if err != nil {
			t.Fatal(err)
		}
		hasCert := strings.Contains(string(env), "\x00PLUGIN_CLIENT_CERT=") || strings.HasPrefix(string(env), "PLUGIN_CLIENT_CERT=")
		hostUID := strings.Contains(string(env), fmt.Sprintf("%s=%d", externalnode.HostUIDEnv, os.Geteuid()))
		if hasCert != c.wantCert || !hostUID {
			t.Errorf("plugin_channel %q: plugin has an AutoMTLS certificate %v (want %v), %s set %v", c.channel, hasCert, c.wantCert, externalnode.HostUIDEnv, hostUID)
		}
		rt.Close()
	}
}

// A plugin in an envelope is told the envelope's memory limit, which the
// SDK's garbage collector keeps under (externalnode/gc.go): a limits
// override and the profile's default alike.
func TestPluginToldItsMemoryLimit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: cgroup envelopes")
	}
	cfgPath := testplugin.Config(t, t.TempDir(), map[string]string{"stt": "limits: {memory_mb: 300}"}, "")
	rt := testrt.Start(t, cfgPath, nil)
	defer rt.Close()
	for pool, want := range map[string]int64{"stt": 300 << 20, "tts": 1 << 30} {
		pids := rt.Pool(pool).Pids()
		if len(pids) == 0 {
			t.Fatalf("no %s plugin running", pool)
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pids[0]))
		if err != nil {
			t.Fatal(err)
		}
		kv := fmt.Sprintf("%s=%d", externalnode.MemoryLimitEnv, want)
		if !slices.Contains(strings.Split(string(env), "\x00"), kv) {
			t.Errorf("%s plugin's environment lacks %s", pool, kv)
		}
	}
}
