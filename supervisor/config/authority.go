package config

import (
	"net/url"
	"strings"
)

// Authority is where session placement leases come from (RK-09). Empty:
// the in-process authority (every session this runtime serves is its own,
// at epoch 1).
//
//	authority:
//	  etcd: {endpoints: ["http://127.0.0.1:2379"], ttl: 5s, acquire_timeout: 30s}
type Authority struct {
	Etcd *EtcdAuthority `yaml:"etcd"`
}

// EtcdAuthority takes leases from etcd.
type EtcdAuthority struct {
	Endpoints []string `yaml:"endpoints"`
	// TTL of a session's lease (default 5s): a holder that stops renewing
	// loses its sessions this long after its last renewal.
	TTL Duration `yaml:"ttl"`
	// AcquireTimeout bounds the wait for a session another holder has
	// (default 30s).
	AcquireTimeout Duration `yaml:"acquire_timeout"`
	// Prefix of the session keys (default /rspp/sessions/).
	Prefix string `yaml:"prefix"`
}

func (c *Config) validateAuthority() error {
	e := c.Authority.Etcd
	if e == nil {
		return nil
	}
	if len(e.Endpoints) == 0 {
		return c.errf("authority.etcd.endpoints", "at least one endpoint is required")
	}
	for _, ep := range e.Endpoints {
		if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c.errf("authority.etcd.endpoints", "must be http(s)://host:port, got %q", ep)
		}
	}
	if e.TTL < 0 || e.AcquireTimeout < 0 {
		return c.errf("authority.etcd", "ttl and acquire_timeout must not be negative")
	}
	if e.Prefix != "" && !strings.HasPrefix(e.Prefix, "/") {
		return c.errf("authority.etcd.prefix", "must start with /, got %q", e.Prefix)
	}
	return nil
}

// ValidateAuthority checks the authority block again (after flags changed
// it).
func (c *Config) ValidateAuthority() error { return c.validateAuthority() }
