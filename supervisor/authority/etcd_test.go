package authority_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/authority"
	"github.com/rspp/rspp/test/etcdtest"
)

func newEtcd(t *testing.T, srv *etcdtest.Server, ttl, acquire time.Duration) *authority.Etcd {
	t.Helper()
	a, err := authority.NewEtcd(context.Background(), authority.EtcdConfig{Endpoints: []string{srv.Endpoint}, TTL: ttl, AcquireTimeout: acquire})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// Two holders, one etcd: the second waits while the first holds the
// session; after the first releases, it gets a higher epoch and the first
// lease is lost for good.
func TestEtcdSecondHolderWaitsThenGetsHigherEpoch(t *testing.T) {
	srv := etcdtest.Start(t)
	a, b := newEtcd(t, srv, 2*time.Second, 10*time.Second), newEtcd(t, srv, 2*time.Second, 10*time.Second)
	la, err := a.Acquire(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	if la.Check() != nil || la.Epoch() == 0 {
		t.Fatalf("fresh lease: epoch %d, %v", la.Epoch(), la.Check())
	}
	got := make(chan authority.Lease, 1)
	go func() {
		lb, err := b.Acquire(context.Background(), "s1")
		if err != nil {
			t.Error(err)
		}
		got <- lb
	}()
	select {
	case <-got:
		t.Fatal("second holder got a held session")
	case <-time.After(3 * time.Second): // past the TTL: keep-alives hold it
	}
	if la.Check() != nil {
		t.Fatalf("kept-alive lease: %v", la.Check())
	}
	la.Release()
	lb := <-got
	if lb == nil || lb.Epoch() <= la.Epoch() {
		t.Fatalf("takeover epoch %v after %d", lb, la.Epoch())
	}
	if !errors.Is(la.Check(), kernel.ErrStaleEpoch) {
		t.Fatalf("released lease still valid: %v", la.Check())
	}
	k := authority.Kernel{L: la}
	if cur := k.CurrentEpoch("s1"); cur == la.Epoch() {
		t.Fatalf("kernel view of the lost lease: %d", cur)
	}
	lb.Release()
}

// A holder that closes gives its sessions up at once: the next holder
// does not wait for a TTL, gets a higher epoch, and the gate check passes
// only the new epoch. (Expiry of a stopped holder: test/authority.)
func TestEtcdClosedHolderIsTakenOverAtOnce(t *testing.T) {
	srv := etcdtest.Start(t)
	a := newEtcd(t, srv, 2*time.Second, 10*time.Second)
	la, err := a.Acquire(context.Background(), "s2")
	if err != nil {
		t.Fatal(err)
	}
	b := newEtcd(t, srv, 2*time.Second, 15*time.Second)
	a.Close() // releases: the key goes at once
	lb, err := b.Acquire(context.Background(), "s2")
	if err != nil {
		t.Fatal(err)
	}
	if lb.Epoch() <= la.Epoch() || la.Check() == nil {
		t.Fatalf("epochs %d -> %d, old %v", la.Epoch(), lb.Epoch(), la.Check())
	}
	g := authority.GateCheck{L: lb}
	if g.CheckEpoch(lb.Epoch()) != nil || !errors.Is(g.CheckEpoch(la.Epoch()), kernel.ErrStaleEpoch) {
		t.Fatal("gate check")
	}
}

func TestEtcdAcquireTimesOutTyped(t *testing.T) {
	srv := etcdtest.Start(t)
	a, b := newEtcd(t, srv, 2*time.Second, 10*time.Second), newEtcd(t, srv, 2*time.Second, 500*time.Millisecond)
	if _, err := a.Acquire(context.Background(), "s3"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(context.Background(), "s3"); !errors.Is(err, authority.ErrAcquire) {
		t.Fatalf("acquire of a held session: %v", err)
	}
}

func TestEtcdUnreachableIsTyped(t *testing.T) {
	_, err := authority.NewEtcd(context.Background(), authority.EtcdConfig{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 300 * time.Millisecond})
	if !errors.Is(err, authority.ErrAcquire) {
		t.Fatalf("unreachable etcd: %v", err)
	}
}

// A holder cut off from etcd (the service stopped answering) sees its
// lease expire by its own clock one TTL after its last renewal, and for
// good: once etcd answers again, the lease stays lost and another holder
// takes the session with a higher epoch.
func TestEtcdCutOffHolderExpiresByItsOwnClock(t *testing.T) {
	srv := etcdtest.Start(t)
	a := newEtcd(t, srv, 2*time.Second, 10*time.Second)
	la, err := a.Acquire(context.Background(), "s4")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	for la.Check() == nil && time.Since(stopped) < 10*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(la.Check(), authority.ErrExpired) {
		t.Fatalf("cut-off lease after %v: %v", time.Since(stopped), la.Check())
	}
	b := newEtcd(t, srv, 2*time.Second, 15*time.Second)
	lb, err := b.Acquire(context.Background(), "s4")
	if err != nil {
		t.Fatal(err)
	}
	if lb.Epoch() <= la.Epoch() || !errors.Is(la.Check(), authority.ErrExpired) {
		t.Fatalf("epochs %d -> %d; old lease %v", la.Epoch(), lb.Epoch(), la.Check())
	}
}
