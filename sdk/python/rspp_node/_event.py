"""The Event ABI as a node author sees it, and its mapping to the wire."""

from dataclasses import dataclass, field
from typing import Optional

from .gen import rspp_pb2 as pb

SCHEMA_VERSION = 1

AUDIO_FRAME = "audio.frame"
TRANSCRIPT_PARTIAL = "transcript.partial"
TRANSCRIPT_FINAL = "transcript.final"
TEXT_DELTA = "text.delta"
TEXT_FINAL = "text.final"


@dataclass
class Text:
    text: str
    final: bool = False


@dataclass
class Audio:
    """PCM s16le, interleaved."""
    pcm: bytes
    sample_rate: int
    channels: int = 1


@dataclass
class Control:
    signal: str = ""
    scope: str = ""
    reason: str = ""


@dataclass
class Event:
    type: str
    lane: str = ""  # "control", "data", "telemetry"; "" = the type's prefix decides
    id: str = ""
    session_id: str = ""
    turn_id: str = ""
    node_id: str = ""
    invocation_id: str = ""
    schema_version: int = 0
    text: Optional[Text] = None
    audio: Optional[Audio] = None
    control: Optional[Control] = None
    media_ns: int = 0
    extra: dict = field(default_factory=dict)


def default_lane(type_: str) -> str:
    """The lane the runtime requires for a type: it decides by prefix."""
    if type_.startswith("control."):
        return "control"
    if type_.startswith("telemetry."):
        return "telemetry"
    return "data"


_LANE_TO_WIRE = {"control": pb.LANE_CONTROL, "data": pb.LANE_DATA, "telemetry": pb.LANE_TELEMETRY}
_LANE_FROM_WIRE = {v: k for k, v in _LANE_TO_WIRE.items()}


def to_wire(ev: Event) -> pb.Event:
    w = pb.Event(
        event_id=ev.id, event_type=ev.type, lane=_LANE_TO_WIRE[ev.lane or default_lane(ev.type)],
        session_id=ev.session_id, turn_id=ev.turn_id, node_id=ev.node_id, invocation_id=ev.invocation_id,
        schema_version=ev.schema_version or SCHEMA_VERSION, media_ns=ev.media_ns,
    )
    if ev.text is not None:
        w.text.text = ev.text.text
        w.text.final = ev.text.final
    elif ev.audio is not None:
        w.audio.pcm = bytes(ev.audio.pcm)
        w.audio.sample_rate = ev.audio.sample_rate
        w.audio.channels = ev.audio.channels
    elif ev.control is not None:
        w.control.signal = ev.control.signal
        w.control.scope = ev.control.scope
        w.control.reason = ev.control.reason
    return w


def from_wire(w: pb.Event) -> Event:
    ev = Event(
        type=w.event_type, lane=_LANE_FROM_WIRE.get(w.lane, ""), id=w.event_id, session_id=w.session_id,
        turn_id=w.turn_id, node_id=w.node_id, invocation_id=w.invocation_id, schema_version=w.schema_version,
        media_ns=w.media_ns,
    )
    which = w.WhichOneof("payload")
    if which == "text":
        ev.text = Text(w.text.text, w.text.final)
    elif which == "audio":
        ev.audio = Audio(w.audio.pcm, w.audio.sample_rate, w.audio.channels)
    elif which == "control":
        ev.control = Control(w.control.signal, w.control.scope, w.control.reason)
    return ev
