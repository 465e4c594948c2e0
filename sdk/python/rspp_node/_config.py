"""The node's configuration block (Configure)."""

import json
import os


class ConfigError(Exception):
    """A bad configuration block: the runtime refuses to start (exit 2)
    and names the provider; the message should name the key."""


class Config:
    def __init__(self, node_id: str, dir: str, raw: bytes):
        self.node_id = node_id
        self.dir = dir  # the runtime config's directory
        self.raw = raw  # the block as JSON bytes (b"": none)

    def json(self) -> dict:
        if not self.raw:
            return {}
        try:
            v = json.loads(self.raw)
        except ValueError as e:
            raise ConfigError(f'config for node "{self.node_id}": not JSON: {e}') from None
        if not isinstance(v, dict):
            raise ConfigError(f'config for node "{self.node_id}": want an object')
        return v

    def decode(self, defaults: dict) -> dict:
        """defaults overlaid with the block; a key not in defaults, or a
        value of another JSON type than its default's, is a ConfigError
        naming the key (as the Go SDK rejects unknown fields)."""
        out = dict(defaults)
        for k, v in self.json().items():
            if k not in out:
                known = ", ".join(out) or "none"
                raise ConfigError(f'config for node "{self.node_id}": unknown key "{k}" (known: {known})')
            want = out[k]
            if want is not None and not _same_json_type(want, v):
                raise ConfigError(f'config for node "{self.node_id}": key "{k}" is {type(v).__name__}, want {type(want).__name__}')
            out[k] = v
        return out

    def path(self, p: str) -> str:
        """p resolved against dir unless absolute."""
        if not p or os.path.isabs(p) or not self.dir:
            return p
        return os.path.join(self.dir, p)


def _same_json_type(want, v) -> bool:
    if isinstance(want, bool) or isinstance(v, bool):
        return isinstance(want, bool) and isinstance(v, bool)
    if isinstance(want, (int, float)):
        return isinstance(v, (int, float))
    return isinstance(v, type(want))
