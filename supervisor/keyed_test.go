package supervisor

import (
	"strings"
	"testing"
)

// A pool key names its generation and scope, and parses back.
func TestPoolKeysParseBack(t *testing.T) {
	g := &generation{key: "tts#3", share: "session"}
	for _, c := range []struct{ tenant, session string }{{"acme", "s/1"}, {"", "x"}} {
		k := g.poolKey(c.tenant, c.session)
		sc, ok := g.parse(k)
		if !ok || sc.tenant != c.tenant || sc.session != c.session {
			t.Errorf("%s parsed to %+v %v", k, sc, ok)
		}
	}
	gt := &generation{key: "tts#3", share: "tenant"}
	if _, ok := gt.parse("tts#3/tenant=a/session=b"); ok {
		t.Error("a session key parsed for a share: tenant generation")
	}
	if _, ok := gt.parse("tts#30/tenant=a"); ok {
		t.Error("another generation's key parsed")
	}
	if shared := (&generation{key: "stt#1"}).poolKey("acme", "s"); shared != "stt#1" {
		t.Errorf("a trusted provider's key %q depends on the tenant", shared)
	}
	for _, bad := range []string{"_", "../x", "a b", strings.Repeat("a", 65)} {
		if CheckTenant(bad) == nil {
			t.Errorf("tenant %q accepted", bad)
		}
	}
}
