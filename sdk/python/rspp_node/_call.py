"""One invocation as the author sees it."""

import asyncio
import collections
from typing import AsyncIterator, Callable, List

from ._event import AUDIO_FRAME, SCHEMA_VERSION, Audio, Event, Text, default_lane
from ._protocol import MAX_MESSAGE_BYTES


class CancelledError(Exception):
    """Raised by emit after the invocation was cancelled: nothing was sent."""


class InvalidInputError(Exception):
    """Raise from invoke for unusable input: END{INVALID_INPUT}."""


class EventTooLargeError(Exception):
    """Raised by emit for an event over MAX_MESSAGE_BYTES: nothing was sent."""


class Call:
    def __init__(self, id: str, session_id: str, turn_id: str, node_id: str,
                 send: Callable[[Event], None], consumed: Callable[[int], None]):
        self.id = id
        self.session_id = session_id
        self.turn_id = turn_id
        self.node_id = node_id
        self.cancelled = asyncio.Event()
        self._send = send
        self._consumed = consumed
        self._queue: collections.deque = collections.deque()
        self._closed = False
        self._wake = asyncio.Event()

    # transport side
    def push(self, ev: Event) -> None:
        if not self._closed:
            self._queue.append(ev)
            self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def cancel(self) -> None:
        self.cancelled.set()
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def inputs(self) -> AsyncIterator[Event]:
        """The inputs, in order, until the runtime closes them (or cancels)."""
        while True:
            if self.cancelled.is_set():
                return
            if self._queue:
                ev = self._queue.popleft()
                self._consumed(1)
                yield ev
                continue
            if self._closed:
                return
            self._wake.clear()
            await self._wake.wait()

    def emit(self, ev: Event) -> None:
        """Sends one output. node_id and invocation_id are always the call's;
        session_id and turn_id are filled in when empty; lane and schema
        version get their defaults."""
        if self.cancelled.is_set():
            raise CancelledError("invocation cancelled")
        ev.session_id = ev.session_id or self.session_id
        ev.turn_id = ev.turn_id or self.turn_id
        ev.invocation_id = self.id
        ev.node_id = self.node_id
        ev.lane = ev.lane or default_lane(ev.type)
        ev.schema_version = ev.schema_version or SCHEMA_VERSION
        size = 256 + len(ev.type) + (len(ev.text.text.encode()) if ev.text else 0) + (len(ev.audio.pcm) if ev.audio else 0)
        if size > MAX_MESSAGE_BYTES - 256:
            raise EventTooLargeError(f"{ev.type} event is about {size} bytes on the wire, limit {MAX_MESSAGE_BYTES}")
        self._send(ev)

    def emit_text(self, type_: str, text: str, final: bool = False) -> None:
        self.emit(Event(type=type_, text=Text(text, final)))

    def emit_audio(self, pcm: bytes, sample_rate: int, channels: int = 1) -> None:
        self.emit(Event(type=AUDIO_FRAME, audio=Audio(pcm, sample_rate, channels)))


class TestCall(Call):
    """A Call for unit tests of a Node without any process boundary: inputs
    given up front, outputs collected in .outputs. A test seam, not a
    transport. Make it inside a running event loop."""

    __test__ = False  # not a test case

    def __init__(self, inputs: List[Event], id: str = "test-invocation", session_id: str = "test-session",
                 turn_id: str = "test-turn", node_id: str = "test-node"):
        self.outputs: List[Event] = []
        self.consumed_inputs = 0

        def consumed(n: int) -> None:
            self.consumed_inputs += n

        super().__init__(id, session_id, turn_id, node_id, self.outputs.append, consumed)
        for ev in inputs:
            self.push(ev)
        self.close()

    def texts(self) -> List[str]:
        return [e.text.text for e in self.outputs if e.text is not None]


def text_event(type_: str, text: str, final: bool = False) -> Event:
    return Event(type=type_, text=Text(text, final))

