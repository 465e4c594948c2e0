package isolation_test

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
)

// A tenant node (no network in its sandbox) announcing a TCP address on the
// host in its handshake: the supervisor opens no connection there and the
// start fails as a protocol error naming the address, while an honest
// tenant node next to it still starts and serves.
func TestTenantHandshakeToHostTCPIsRefused(t *testing.T) {
	w := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			_ = c.Close()
		}
	}()
	defer func() { _ = ln.Close(); <-done }()
	evil := *w
	evil.tcp = ln.Addr().String()
	_, _, refused := evil.start(t, "hostile-announce-tcp", "announce-tcp")
	// Anything dialled during the start sits in the backlog by now.
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(300 * time.Millisecond))
	<-done
	if n := conns.Load(); n != 0 {
		t.Errorf("the supervisor opened %d connection(s) to the host TCP address the tenant announced", n)
	}
	var pe *externalnode.ProtocolError
	if !errors.As(refused, &pe) || !errors.Is(refused, kernel.ErrProtocol) || !strings.Contains(refused.Error(), evil.tcp) {
		t.Fatalf("start: %v, want a protocol error naming %s", refused, evil.tcp)
	}
	honest, _, err := w.start(t, "honest-beside", "honest")
	if err != nil {
		t.Fatalf("honest tenant start: %v", err)
	}
	if o := invoke(t, honest, "s", "t", 0); o.err != nil || len(o.events) == 0 {
		t.Errorf("honest tenant node did not serve: %v, %d events", o.err, len(o.events))
	}
	t.Logf("tenant TCP handshake refused: %v", refused)
}
