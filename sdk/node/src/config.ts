// The node's configuration block (Configure).

import * as path from 'path';

/**
 * A configuration error: the runtime refuses to start (exit 2) and names
 * the provider; the message should name the key.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The node's block from the runtime config. */
export class Config {
  constructor(
    /** The pipeline node id the block is for. */
    readonly nodeId: string,
    /** The runtime config's directory: relative paths resolve against it. */
    readonly dir: string,
    /** The block as JSON bytes (empty: no block). */
    readonly raw: Buffer,
  ) {}

  /** The block parsed, or {} without one. */
  json(): Record<string, unknown> {
    if (this.raw.length === 0) return {};
    let v: unknown;
    try {
      v = JSON.parse(this.raw.toString('utf8'));
    } catch (e) {
      throw new ConfigError(`config for node "${this.nodeId}": not JSON: ${(e as Error).message}`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw new ConfigError(`config for node "${this.nodeId}": want an object`);
    }
    return v as Record<string, unknown>;
  }

  /**
   * decode returns defaults overlaid with the block. Keys not in defaults
   * and values of another JSON type than the default's are ConfigErrors
   * naming the key, as the Go SDK's Decode rejects unknown fields.
   */
  decode<T extends object>(defaults: T): T {
    const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
    for (const [k, v] of Object.entries(this.json())) {
      if (!(k in out)) {
        throw new ConfigError(`config for node "${this.nodeId}": unknown key "${k}" (known: ${Object.keys(out).join(', ') || 'none'})`);
      }
      const want = typeof out[k];
      if (out[k] !== undefined && out[k] !== null && typeof v !== want) {
        throw new ConfigError(`config for node "${this.nodeId}": key "${k}" is ${typeof v}, want ${want}`);
      }
      out[k] = v;
    }
    return out as T;
  }

  /** Resolves p against dir unless it is absolute. */
  path(p: string): string {
    if (!p || path.isAbsolute(p) || !this.dir) return p;
    return path.join(this.dir, p);
  }
}
