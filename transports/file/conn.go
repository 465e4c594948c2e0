package file

import (
	"context"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/transports"
)

// Conn is the file transport as a transports.Conn: one session whose
// inbound frames are a WAV's (paced like a microphone when Realtime,
// with trailing silence) and whose agent audio is written to a Sink. Its
// input ends normally at the end of the file (Err nil): the runtime lets
// the last turn finish before it closes the session.
type Conn struct {
	*transports.Feed
	route transports.Route
	src   Source
	sink  *Sink
}

// NewConn makes the connection of one session; it starts reading at Bind.
func NewConn(route transports.Route, src Source, sink *Sink) *Conn {
	return &Conn{Feed: transports.NewFeed(), route: route, src: src, sink: sink}
}

// Route implements transports.Conn.
func (c *Conn) Route() transports.Route { return c.route }

// Bind implements transports.Conn: the file starts playing.
func (c *Conn) Bind(transports.Binding) error {
	c.Start(context.Background(), func(ctx context.Context, emit func(eventabi.Event) error) error {
		return c.src.Play(ctx, ingestFunc(emit))
	})
	return nil
}

// ingestFunc hands Source.Play's frames to the feed.
type ingestFunc func(eventabi.Event) error

func (f ingestFunc) Ingest(ev eventabi.Event) error { return f(ev) }

// Send implements transports.Conn: agent audio goes to the output WAV.
func (c *Conn) Send(ev eventabi.Event) error { return c.sink.Send(ev) }

// Fence implements transports.Conn (the sink buffers nothing; it refuses
// later output of the turn).
func (c *Conn) Fence(turnID, reason string) { c.sink.Fence(turnID, reason) }

// Notify implements transports.Conn: a file has no one to show it to.
func (c *Conn) Notify(transports.Notice) {}

// The feed's Inbound, Refuse, Close (it waits for the input to stop; the
// output WAV is finished by its owner, Sink.Close) and Err (nil at the end
// of the file) complete transports.Conn.
var _ transports.Conn = (*Conn)(nil)
