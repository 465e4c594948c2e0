"""What a node author implements."""

from dataclasses import dataclass, field
from typing import List


@dataclass
class Info:
    name: str
    kind: str  # "stt", "llm", "tts" or "custom": must match the provider's configured kind
    version: str  # shows up in every turn's binding
    accepts: List[str] = field(default_factory=list)  # input types delivered (empty: all)
    emits: List[str] = field(default_factory=list)  # output types it may emit (empty: any the gateway allows)
    input_window: int = 0  # per-invocation input window (0: DEFAULT_INPUT_WINDOW)


class Node:
    """Subclass and override info and invoke (configure is optional)."""

    def info(self) -> Info:
        raise NotImplementedError

    async def configure(self, cfg) -> None:
        """Called once after start, before any invoke. Raise ConfigError for a bad block."""

    async def invoke(self, call) -> None:
        """One invocation: `async for ev in call.inputs()` until they end,
        emit outputs, return on success. A cancel cancels this task
        (asyncio.CancelledError). Invocations of different sessions run
        concurrently."""
        raise NotImplementedError
