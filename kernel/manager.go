package kernel

import (
	"fmt"
	"sort"
	"sync"
)

// Manager is the session registry (RK-01 session manager): it opens
// sessions, finds them by id and forgets them once closed. It holds no
// session logic of its own; each Session stays single-owner. The mutex only
// guards the map, so runner goroutines of different sessions may share one
// Manager.
type Manager struct {
	mu       sync.Mutex
	sessions map[string]*Session
}

// NewManager makes an empty registry.
func NewManager() *Manager { return &Manager{sessions: map[string]*Session{}} }

// Open creates and registers a session; a live session with the same id is
// an error (one writer per session).
func (m *Manager) Open(cfg SessionConfig) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[cfg.SessionID]; ok && !s.Closed() {
		return nil, fmt.Errorf("%w: session %q already open", ErrConfig, cfg.SessionID)
	}
	s, err := NewSession(cfg)
	if err != nil {
		return nil, err
	}
	m.sessions[cfg.SessionID] = s
	return s, nil
}

// Get returns a registered session or ErrUnknownSession.
func (m *Manager) Get(id string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSession, id)
	}
	return s, nil
}

// Forget removes a session (normally after its SessionClosed effect).
func (m *Manager) Forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, id)
}

// IDs lists registered session ids in order.
func (m *Manager) IDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.sessions))
	for id := range m.sessions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
