package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/rspp/rspp/supervisor/config"
)

// authorityFlags take session placement leases from etcd instead of the
// config's authority block (run, serve, chaos).
type authorityFlags struct {
	endpoints []string
	ttl       time.Duration
}

func (a *authorityFlags) register(f *pflag.FlagSet) {
	f.StringSliceVar(&a.endpoints, "etcd", nil, "take session placement leases from etcd at these endpoints (http://host:port,...) instead of in-process")
	f.DurationVar(&a.ttl, "lease-ttl", 0, "TTL of a session's etcd lease (default: the config's, else 5s)")
}

// apply puts the flags into the config (flags win).
func (a *authorityFlags) apply(cfg *config.Config) error {
	if len(a.endpoints) == 0 {
		if a.ttl != 0 {
			return usageError{fmt.Errorf("--lease-ttl needs --etcd or authority.etcd in the config")}
		}
		return nil
	}
	if a.ttl < 0 {
		return usageError{fmt.Errorf("--lease-ttl must be positive")}
	}
	e := cfg.Authority.Etcd
	if e == nil {
		e = &config.EtcdAuthority{}
		cfg.Authority.Etcd = e
	}
	e.Endpoints = a.endpoints
	if a.ttl > 0 {
		e.TTL = config.Duration(a.ttl)
	}
	return cfg.ValidateAuthority()
}
