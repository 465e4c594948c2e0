package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A pipeline node's provider is one name or an ordered list of them:
//
//	- {id: tts, provider: espeak}
//	- {id: tts, provider: [espeak, flite]}
//
// With a list, each turn binds the first provider whose circuit is not
// open (switch), and a typed failure of an invocation moves the turn on to
// the next one (on_failure defaults to fallback for a list). Every listed
// provider must exist and be of the same kind.

// UnmarshalYAML reads a node, taking provider as a name or a list. It is as
// strict as the rest of the file: an unknown key is an error.
func (n *Node) UnmarshalYAML(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a pipeline node is a mapping (id, provider, ...)", v.Line)
	}
	known := yamlKeys(reflect.TypeOf(Node{}))
	m := *v
	m.Content = append([]*yaml.Node(nil), v.Content...)
	var list []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		if !known[key.Value] {
			return fmt.Errorf("line %d: field %s not found in type config.Node", key.Line, key.Value)
		}
		if key.Value == "requires" && val.Kind == yaml.MappingNode {
			// Decoding below is not strict: check the nested block here.
			req := yamlKeys(reflect.TypeOf(Requires{}))
			for j := 0; j+1 < len(val.Content); j += 2 {
				if k := val.Content[j]; !req[k.Value] {
					return fmt.Errorf("line %d: field %s not found in type config.Requires", k.Line, k.Value)
				}
			}
		}
		if key.Value != "provider" || val.Kind != yaml.SequenceNode {
			continue
		}
		if err := val.Decode(&list); err != nil {
			return fmt.Errorf("line %d: provider: want a name or a list of names: %v", val.Line, err)
		}
		if len(list) == 0 {
			return fmt.Errorf("line %d: provider: the list is empty", val.Line)
		}
		first := *val
		first.Kind, first.Tag, first.Value, first.Content = yaml.ScalarNode, "!!str", list[0], nil
		m.Content[i+1] = &first
	}
	type plain Node // no methods: the default decoding
	var p plain
	if err := m.Decode(&p); err != nil {
		return err
	}
	*n = Node(p)
	if len(list) > 1 {
		n.Providers = list
	}
	return nil
}

// yamlKeys are the YAML keys of struct type t.
func yamlKeys(t reflect.Type) map[string]bool {
	keys := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			keys[tag] = true
		}
	}
	return keys
}

// validateProviderList checks node i's provider list and applies its
// default policy (fallback).
func (c *Config) validateProviderList(i int) error {
	n := &c.Pipeline.Nodes[i]
	if len(n.Providers) < 2 {
		return nil
	}
	key := fmt.Sprintf("pipeline.nodes[%d].provider", i)
	kind := ""
	if p := c.Providers[n.Provider]; p != nil {
		kind = p.Kind
	}
	seen := map[string]bool{}
	for j, name := range n.Providers {
		p, ok := c.Providers[name]
		switch {
		case !ok:
			return c.errf(fmt.Sprintf("%s[%d]", key, j), "unknown provider %q (known: %s)", name, strings.Join(c.ProviderNames(), ", "))
		case seen[name]:
			return c.errf(fmt.Sprintf("%s[%d]", key, j), "provider %q is listed twice", name)
		case p.Kind != kind:
			return c.errf(fmt.Sprintf("%s[%d]", key, j), "provider %q is of kind %s, the list's first (%s) of kind %s: a node's providers must be interchangeable", name, p.Kind, n.Provider, kind)
		}
		seen[name] = true
	}
	if n.OnFailure == "" {
		n.OnFailure = "fallback"
	}
	return nil
}

// Replaceable says whether provider may be down without leaving a node
// unserved: every node that uses it lists another provider too. Such a
// provider failing to start does not stop the runtime from starting.
func (c *Config) Replaceable(provider string) bool {
	used := false
	for _, n := range c.Pipeline.Nodes {
		names := n.Providers
		if len(names) == 0 {
			names = []string{n.Provider}
		}
		for _, name := range names {
			if name != provider {
				continue
			}
			used = true
			if len(names) < 2 {
				return false
			}
		}
		if n.Fallback == provider && n.Provider != provider {
			used = true
		}
	}
	return used
}
