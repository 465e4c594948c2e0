package eventabi

import (
	"errors"
	"fmt"
)

// Sentinel error kinds of the ABI. Match with errors.Is.
var (
	ErrInvalidEvent     = errors.New("invalid event")
	ErrSchemaVersion    = errors.New("unsupported schema version")
	ErrUnknownEventType = errors.New("unknown event type")
	ErrPayloadMismatch  = errors.New("payload does not match event type")
	ErrOversized        = errors.New("event exceeds size limit")
	ErrCorrelation      = errors.New("event correlation does not match its scope")
	ErrUndeclaredType   = errors.New("event type not declared by the node")
)

// ValidationError says which field of which event was wrong.
type ValidationError struct {
	Kind  error  // one of the sentinels above
	Field string // e.g. "schema_version", "audio.pcm"
	Type  Type
	Msg   string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("eventabi: %v: %s (type %q, field %s)", e.Kind, e.Msg, e.Type, e.Field)
}

func (e *ValidationError) Unwrap() error { return e.Kind }
