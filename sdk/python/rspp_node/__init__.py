"""rspp_node: write an RSPP node in Python (asyncio).

Implement a Node (info, configure, invoke) and call serve(node) from the
script the runtime starts. Everything on the wire (docs/node-protocol.md:
go-plugin's handshake, rspp.v1.Node over gRPC on a unix socket,
per-invocation credits, cancel, go-plugin's controller and health
services) is in this package.

    class Echo(rspp_node.Node):
        def info(self):
            return rspp_node.Info(name="echo", kind="custom", version="1.0.0")

        async def invoke(self, call):
            async for ev in call.inputs():
                if ev.text:
                    call.emit_text(ev.type, ev.text.text, ev.text.final)

A cancel (barge-in, timeout, turn abort) cancels invoke's task: the
author sees asyncio.CancelledError at its next await, and call.cancelled
is set; emit after it raises CancelledError and sends nothing.
"""

from ._event import (
    AUDIO_FRAME, SCHEMA_VERSION, TEXT_DELTA, TEXT_FINAL, TRANSCRIPT_FINAL, TRANSCRIPT_PARTIAL,
    Audio, Control, Event, Text, default_lane,
)
from ._config import Config, ConfigError
from ._call import Call, CancelledError, EventTooLargeError, InvalidInputError, TestCall
from ._node import Info, Node
from ._protocol import DEFAULT_INPUT_WINDOW, MAX_MESSAGE_BYTES, PROTOCOL_VERSION
from ._serve import serve, start

__all__ = [
    "AUDIO_FRAME", "SCHEMA_VERSION", "TEXT_DELTA", "TEXT_FINAL", "TRANSCRIPT_FINAL", "TRANSCRIPT_PARTIAL",
    "Audio", "Control", "Event", "Text", "default_lane", "Config", "ConfigError", "Call", "CancelledError",
    "EventTooLargeError", "InvalidInputError", "TestCall", "Info", "Node", "DEFAULT_INPUT_WINDOW",
    "MAX_MESSAGE_BYTES", "PROTOCOL_VERSION", "serve", "start",
]
