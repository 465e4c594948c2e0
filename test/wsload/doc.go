// Package wsload is a load client for RSPP's WebSocket transport
// (transports/websocket/PROTOCOL.md): N concurrent simulated users, each
// speaking WAV utterances in real time (one 20 ms frame per 20 ms, silence
// between utterances, like a microphone) and listening to the agent's
// reply; every BargeInEvery-th utterance is spoken over the agent's audio.
//
// Per turn it measures, at the client: first-audio latency (end of the
// utterance's speech -> first agent frame of its turn), barge-in fence
// latency (speech start -> fence of the interrupted turn, and -> that
// turn's last frame received), egress frame lateness (for the frames of one
// audio_start run, arrival_k - (arrival_0 + 20 ms * k), positive part:
// how late a frame is for a client that plays from the run's first frame;
// a server pre-roll keeps it at 0 until the pacing slips by more than the
// pre-roll, so the inter-frame gap over 20 ms is reported beside it),
// frames of a fenced turn received after its fence (must be none), and the
// terminals of every turn from the `turn` messages (exactly one commit xor
// abort each).
//
// It only measures and reports; judging the figures is for its callers
// (the load test beside it, `make bench`). Every goroutine a client starts
// ends before RunClient returns, and every connection is closed.
package wsload
