// Constants of the node protocol (docs/node-protocol.md).

/** The node protocol this SDK speaks (go-plugin "app protocol version"). */
export const PROTOCOL_VERSION = 2;
/** go-plugin's core protocol version: the first field of the handshake line. */
export const CORE_PROTOCOL_VERSION = 1;
/** The magic cookie the runtime sets; a node refuses to run without it. */
export const COOKIE_KEY = 'RSPP_NODE_PLUGIN';
export const COOKIE_VALUE = 'a3f1c0de-rspp-node-v1';
/** The uid the runtime runs as (plaintext "peercred" channel). */
export const HOST_UID_ENV = 'RSPP_HOST_UID';
/** Input window offered when Info sets none. */
export const DEFAULT_INPUT_WINDOW = 64;
/** One gRPC message either way is at most this big. */
export const MAX_MESSAGE_BYTES = 1 << 20;
