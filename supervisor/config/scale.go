package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// PoolSize is a provider's pool size (key instances): a number (that many instances,
// always) or {min, max}: the pool keeps at least Min ready and grows
// toward Max while its instances are busy (queued invocations, busy time),
// shrinking again, by draining, when the load goes.
type PoolSize struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
	// ScaleUpBusy is the average of open invocations per ready instance
	// above which the pool grows (default 1: every instance has work).
	ScaleUpBusy float64 `yaml:"scale_up_busy"`
	// ScaleDownIdle is how long the pool must have had more instances
	// than its load needs before one is drained (default 10s).
	ScaleDownIdle Duration `yaml:"scale_down_idle"`
}

// autoscaled says whether the pool may change size.
func (i PoolSize) autoscaled() bool { return i.Max > i.Min }

func (i *PoolSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var v int
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: instances: want a number or {min, max}, got %q", n.Line, n.Value)
		}
		*i = PoolSize{Min: v, Max: v}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: instances: want a number or {min, max}", n.Line)
	}
	// A custom unmarshaler's Decode does not inherit the decoder's
	// KnownFields: check the keys here.
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "min", "max", "scale_up_busy", "scale_down_idle":
		default:
			return fmt.Errorf("line %d: instances: unknown key %q (min, max, scale_up_busy, scale_down_idle)", n.Content[i].Line, k)
		}
	}
	type plain PoolSize // no UnmarshalYAML: decodes the mapping
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*i = PoolSize(p)
	return nil
}

func (c *Config) validateInstances(key string, p *Provider) error {
	in := &p.Instances
	if in.Min == 0 && in.Max == 0 {
		in.Min, in.Max = 1, 1
	}
	if in.Max == 0 {
		in.Max = in.Min
	}
	switch {
	case in.Min < 1 || in.Min > 64:
		return c.errf(key+".instances", "must be 1..64, got %d", in.Min)
	case in.Max < in.Min || in.Max > 64:
		return c.errf(key+".instances.max", "must be min (%d)..64, got %d", in.Min, in.Max)
	case in.ScaleUpBusy < 0:
		return c.errf(key+".instances.scale_up_busy", "must not be negative")
	case in.ScaleDownIdle < 0:
		return c.errf(key+".instances.scale_down_idle", "must not be negative")
	case in.Max > in.Min && p.Profile == "tenant":
		return c.errf(key+".instances", "min/max autoscaling applies to trusted providers (a tenant's pools are keyed per tenant)")
	}
	return nil
}

// Admission bounds what the runtime accepts, so that past its capacity a
// new session is refused with a reason instead of every session
// degrading together (RK-10). Zero values are "no limit".
type Admission struct {
	// MaxSessions bounds concurrent sessions of the runtime.
	MaxSessions int `yaml:"max_sessions"`
	// TenantSessions bounds concurrent sessions of each tenant (the
	// default tenant included); Tenants overrides it per tenant.
	TenantSessions int `yaml:"tenant_sessions"`
	// TenantTurns bounds the turns a tenant may have open at once: a turn
	// past it is deferred (pre_turn_defer) and, still over after the
	// kernel's defers, rejected. Other tenants' turns never wait for it.
	TenantTurns int                    `yaml:"tenant_turns"`
	Tenants     map[string]TenantQuota `yaml:"tenants"`
	// MemoryHeadroom refuses new sessions while any shared pool's
	// instances have less than this fraction of their envelope's memory
	// limit free (0..1; 0: not checked).
	MemoryHeadroom float64 `yaml:"memory_headroom"`
	// CPUHeadroom refuses new sessions while the shared pools' instances
	// were throttled in more than 1-CPUHeadroom of their CPU periods
	// since the previous check (0..1; 0: not checked).
	CPUHeadroom float64 `yaml:"cpu_headroom"`
}

// TenantQuota is one tenant's bounds (0: the admission defaults).
type TenantQuota struct {
	Sessions int `yaml:"sessions"`
	Turns    int `yaml:"turns"`
}

func (c *Config) validateAdmission() error {
	a := c.Admission
	switch {
	case a.MaxSessions < 0:
		return c.errf("admission.max_sessions", "must not be negative, got %d", a.MaxSessions)
	case a.TenantSessions < 0:
		return c.errf("admission.tenant_sessions", "must not be negative, got %d", a.TenantSessions)
	case a.TenantTurns < 0:
		return c.errf("admission.tenant_turns", "must not be negative, got %d", a.TenantTurns)
	case a.MemoryHeadroom < 0 || a.MemoryHeadroom >= 1:
		return c.errf("admission.memory_headroom", "must be within 0..1, got %v", a.MemoryHeadroom)
	case a.CPUHeadroom < 0 || a.CPUHeadroom >= 1:
		return c.errf("admission.cpu_headroom", "must be within 0..1, got %v", a.CPUHeadroom)
	}
	for name, q := range a.Tenants {
		if q.Sessions < 0 || q.Turns < 0 {
			return c.errf("admission.tenants."+name, "sessions and turns must not be negative")
		}
	}
	return nil
}
