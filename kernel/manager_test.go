package kernel

import "testing"

func TestManager(t *testing.T) {
	m := NewManager()
	cfg := SessionConfig{SessionID: "a", Clock: &fakeClock{}, Graph: linearGraph()}
	s, err := m.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Open(cfg); !errorsIs(err, ErrConfig) {
		t.Fatalf("second writer for a live session: %v", err)
	}
	if got, err := m.Get("a"); err != nil || got != s {
		t.Fatalf("get: %v", err)
	}
	if _, err := m.Get("b"); !errorsIs(err, ErrUnknownSession) {
		t.Fatalf("unknown: %v", err)
	}
	s.Close("done")
	if _, err := m.Open(cfg); err != nil { // a closed session's id may be reused
		t.Fatal(err)
	}
	m.Forget("a")
	if len(m.IDs()) != 0 {
		t.Fatal("not forgotten")
	}
}
