package session

import (
	"time"

	"github.com/rspp/rspp/kernel/record"
)

// openRecorded opens the kernel session through the recording layer:
// its inputs go to cfg.Timeline as records of type "input" (level full),
// its records are stamped with wall and media time.
func openRecorded(cfg Config) (*record.Session, error) {
	o := record.Options{Policy: cfg.Recording, WallAnchor: time.Now().UnixNano() - cfg.Kernel.Clock.Now()}
	if cfg.Timeline != nil {
		o.Sink = cfg.Timeline.Append
	}
	return record.Open(cfg.Kernel, o)
}
