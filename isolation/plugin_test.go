package isolation_test

import (
	"context"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/rspp/rspp/isolation"
)

// pingPlugin is the smallest go-plugin gRPC plugin: no service of its own;
// the client pings go-plugin's built-in health service.
type pingPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (pingPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }
func (pingPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return c, nil
}

var pingHandshake = plugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "RSPP_ISOLATION_TEST", MagicCookieValue: "ping"}

func servePingPlugin() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: pingHandshake,
		Plugins:         plugin.PluginSet{"ping": pingPlugin{}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.NewNullLogger(),
	})
}

// startPing starts the ping plugin (sandboxed when p is non-nil), pings it
// and returns the client; the caller kills it.
func startPing(tb testing.TB, p *isolation.Profile, env *isolation.Envelope) (*plugin.Client, error) {
	entry, plug := testBinaries(tb)
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  pingHandshake,
		Plugins:          plugin.PluginSet{"ping": pingPlugin{}},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.NewNullLogger(),
		StartTimeout:     20 * time.Second,
	}
	if p == nil {
		cmd := exec.Command(plug)
		cmd.Env = append(os.Environ(), "RSPP_ISOLATION_HELPER=plugin")
		cfg.Cmd = cmd
	} else {
		pp := *p
		pp.EntryPath = entry
		cfg.SkipHostEnv = pp.SkipHostEnv
		cfg.RunnerFunc = pp.RunnerFunc(env, isolation.Target{Binary: plug, Env: []string{"RSPP_ISOLATION_HELPER=plugin"}})
	}
	c := plugin.NewClient(cfg)
	rpc, err := c.Client()
	if err == nil {
		err = rpc.Ping()
	}
	if err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

func TestGoPluginThroughTenantSandbox(t *testing.T) {
	es := openEnvelopes(t, isolation.EnvelopesConfig{})
	p, err := isolation.ProfileByName("tenant", isolation.Override{ScratchRoot: traversableDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	env, err := es.New("ping-plugin", "tenant-c", p.Limits)
	if err != nil {
		t.Fatal(err)
	}
	c, err := startPing(t, &p, env)
	if err != nil {
		t.Fatalf("go-plugin handshake through the tenant sandbox: %v", err)
	}
	pids, _ := env.Pids()
	if len(pids) == 0 {
		t.Fatal("plugin not in its envelope")
	}
	c.Kill()
	if !c.Exited() {
		t.Fatal("plugin still running after Kill")
	}
	if pids, _ := env.Pids(); len(pids) != 0 {
		t.Fatalf("processes left in envelope after Kill: %v", pids)
	}
}

// BenchmarkPluginStart measures go-plugin start (NewClient to first Ping)
// bare, trusted, tenant without the sealed root (landlock only) and the
// sealed tenant, interleaved in the same run so the ratios are fair on a
// noisy machine. Envelope creation and removal are included
// in the sandboxed figures. Reports p50/p99 in ms and the p50 ratios.
func BenchmarkPluginStart(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: sandboxed starts create cgroups and namespaces")
	}
	es, err := isolation.OpenEnvelopes(isolation.EnvelopesConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	trusted, _ := isolation.ProfileByName("trusted")
	scratch, _ := os.MkdirTemp("", "rspp-bench-")
	_ = os.Chmod(scratch, 0o755)
	defer os.RemoveAll(scratch)
	tenant, _ := isolation.ProfileByName("tenant", isolation.Override{ScratchRoot: scratch})
	// The tenant profile before sealing: the same namespaces, landlock and
	// seccomp, on the host's filesystem. The sealed/landlock ratio is the
	// cost of building the sealed root.
	landlock := tenant
	landlock.Seal, landlock.ReadPaths = false, append([]string(nil), isolation.DefaultReadPaths...)
	var bare, tr, te, ll []time.Duration
	run := func(p *isolation.Profile, into *[]time.Duration) {
		start := time.Now()
		var env *isolation.Envelope
		if p != nil {
			if env, err = es.New("bench", "", p.Limits); err != nil {
				b.Fatal(err)
			}
		}
		c, err := startPing(b, p, env)
		if err != nil {
			b.Fatal(err)
		}
		*into = append(*into, time.Since(start))
		c.Kill()
		if env != nil {
			_ = env.Close()
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(nil, &bare)
		run(&trusted, &tr)
		run(&landlock, &ll)
		run(&tenant, &te)
	}
	b.StopTimer()
	pct := func(d []time.Duration, q float64) float64 {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(bare, 0.5), "bare-p50-ms")
	b.ReportMetric(pct(bare, 0.99), "bare-p99-ms")
	b.ReportMetric(pct(tr, 0.5), "trusted-p50-ms")
	b.ReportMetric(pct(tr, 0.99), "trusted-p99-ms")
	b.ReportMetric(pct(ll, 0.5), "tenant-landlock-p50-ms")
	b.ReportMetric(pct(ll, 0.99), "tenant-landlock-p99-ms")
	b.ReportMetric(pct(te, 0.5), "tenant-sealed-p50-ms")
	b.ReportMetric(pct(te, 0.99), "tenant-sealed-p99-ms")
	b.ReportMetric(pct(tr, 0.5)/pct(bare, 0.5), "trusted/bare-p50")
	b.ReportMetric(pct(ll, 0.5)/pct(bare, 0.5), "tenant-landlock/bare-p50")
	b.ReportMetric(pct(te, 0.5)/pct(bare, 0.5), "tenant-sealed/bare-p50")
	b.ReportMetric(pct(te, 0.5)/pct(ll, 0.5), "tenant-sealed/landlock-p50")
	b.ReportMetric(0, "ns/op")
}
