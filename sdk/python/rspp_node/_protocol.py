"""Constants of the node protocol (docs/node-protocol.md)."""

PROTOCOL_VERSION = 2  # go-plugin "app protocol version"
CORE_PROTOCOL_VERSION = 1  # go-plugin's own: the handshake line's first field
COOKIE_KEY = "RSPP_NODE_PLUGIN"
COOKIE_VALUE = "a3f1c0de-rspp-node-v1"
HOST_UID_ENV = "RSPP_HOST_UID"
DEFAULT_INPUT_WINDOW = 64
MAX_MESSAGE_BYTES = 1 << 20
