#!/usr/bin/python3
"""An example RSPP node on the Python SDK: every text input comes back as
"python: <text>", as the same event type; audio frames come back as they
are (make bench measures the frame round trip through it)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), ".."))

import rspp_node  # noqa: E402


class Echo(rspp_node.Node):
    def info(self):
        return rspp_node.Info(name="echo-python", kind="custom", version="1.0.0",
                              accepts=[rspp_node.TEXT_DELTA, rspp_node.TEXT_FINAL, rspp_node.AUDIO_FRAME],
                              emits=[rspp_node.TEXT_DELTA, rspp_node.TEXT_FINAL, rspp_node.AUDIO_FRAME])

    async def invoke(self, call):
        async for ev in call.inputs():
            if ev.text is not None:
                call.emit_text(ev.type, "python: " + ev.text.text, ev.text.final)
            elif ev.audio is not None:
                call.emit(rspp_node.Event(type=ev.type, audio=ev.audio))


if __name__ == "__main__":
    rspp_node.serve(Echo())
