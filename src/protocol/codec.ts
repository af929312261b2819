/**
 * Encoding and decoding of frames for the two subprotocols. msgpack frames travel as binary
 * WebSocket messages, JSON frames as text messages. Both decoders reject invalid UTF-8 rather than
 * replacing it, so what is stored is exactly what was sent.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { SwitchboardError } from './errors.js';
import { type ServerFrame, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, type Subprotocol } from './frames.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const MAX_DEPTH = 8;

export interface Codec {
  readonly subprotocol: Subprotocol;
  /** True when frames of this codec are binary WebSocket messages. */
  readonly binary: boolean;
  /** Decodes one WebSocket message; throws SwitchboardError `bad_frame` or `invalid_utf8`. */
  decode(data: ArrayBuffer | Uint8Array, isBinary: boolean): unknown;
  encode(frame: ServerFrame): Uint8Array | string;
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new SwitchboardError('invalid_utf8', 'string is not valid UTF-8');
  }
}

// msgpack strings are decoded raw (rawStrings) and converted here with a fatal decoder.
function fromRaw(value: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new SwitchboardError('bad_frame', `frame nests deeper than ${MAX_DEPTH}`);
  if (value instanceof Uint8Array) return decodeUtf8(value);
  if (Array.isArray(value)) return value.map((v) => fromRaw(v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromRaw(v, depth + 1);
    return out;
  }
  return value;
}

/** Throws bad_frame when a parsed JSON value nests deeper than MAX_DEPTH (the msgpack rule, same for both). */
function checkDepth(value: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new SwitchboardError('bad_frame', `frame nests deeper than ${MAX_DEPTH}`);
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const v of value) checkDepth(v, depth + 1);
    return;
  }
  for (const k in value) checkDepth((value as Record<string, unknown>)[k], depth + 1);
}

// Map keys are decoded by the library even with rawStrings; this decoder makes them strict too.
const strictKeyDecoder = {
  canBeCached: () => true,
  decode: (bytes: Uint8Array, offset: number, length: number) =>
    decodeUtf8(bytes.subarray(offset, offset + length)),
};

// One encoder and two decoders for the process, reused: `encode()` and `decode()` of the library build
// a new one per call (a 2 KiB buffer and a stack pool each), which the e2e profile put at 7-18 µs per
// chat message (issue #13). Re-entrant use (an encode inside an encode) gets a clone from the library.
const clientDecoder = new Decoder({
  rawStrings: true,
  keyDecoder: strictKeyDecoder,
  maxStrLength: 1 << 20,
  maxArrayLength: 1024,
  maxMapLength: 64,
});
const peerDecoder = new Decoder({
  maxStrLength: 1 << 20,
  maxBinLength: 4 << 20,
  maxArrayLength: 1 << 16,
  maxMapLength: 64,
});
const encoder = new Encoder({ ignoreUndefined: true });

export function msgpackDecode(data: ArrayBuffer | Uint8Array): unknown {
  let raw: unknown;
  try {
    raw = clientDecoder.decode(data);
  } catch (err) {
    if (err instanceof SwitchboardError) throw err;
    throw new SwitchboardError('bad_frame', 'frame is not a valid msgpack value', { cause: err });
  }
  return fromRaw(raw, 0);
}

/**
 * Decodes msgpack sent by another member of the cluster (the delivery link, src/presence/link.ts):
 * binary values stay bytes (a pushed frame is carried as the wire frame's msgpack bytes), strings are
 * decoded leniently. Bounded in size (a batch of many items, each at most a server frame) but not held
 * to the client-frame rules above. Throws on malformed input.
 */
export function msgpackDecodePeer(data: Uint8Array): unknown {
  return peerDecoder.decode(data);
}

/** Encodes `value`; the bytes are the caller's own (a copy out of the shared encoder's buffer). */
export function msgpackEncode(value: unknown): Uint8Array {
  return encoder.encode(value);
}

export const msgpackCodec: Codec = {
  subprotocol: SUBPROTOCOL_MSGPACK,
  binary: true,
  decode(data, isBinary) {
    if (!isBinary) throw new SwitchboardError('bad_frame', `${SUBPROTOCOL_MSGPACK} expects binary frames`);
    return msgpackDecode(data);
  },
  encode: msgpackEncode,
};

export const jsonCodec: Codec = {
  subprotocol: SUBPROTOCOL_JSON,
  binary: false,
  decode(data, isBinary) {
    if (isBinary) throw new SwitchboardError('bad_frame', `${SUBPROTOCOL_JSON} expects text frames`);
    const text = decodeUtf8(data instanceof Uint8Array ? data : new Uint8Array(data));
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new SwitchboardError('bad_frame', 'frame is not valid JSON', { cause: err });
    }
    // The fuzz test found JSON frames exempt from the depth rule msgpack frames follow.
    checkDepth(value, 0);
    return value;
  },
  encode: (frame) => JSON.stringify(frame),
};

/** Picks our subprotocol from a Sec-WebSocket-Protocol header, preferring the client's order. */
export function negotiateSubprotocol(header: string): Codec | null {
  for (const p of header.split(',')) {
    const name = p.trim();
    if (name === SUBPROTOCOL_MSGPACK) return msgpackCodec;
    if (name === SUBPROTOCOL_JSON) return jsonCodec;
  }
  return null;
}
