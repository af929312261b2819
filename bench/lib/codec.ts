/** msgpack for the bench's clients (@msgpack/msgpack is imported here only), with reusable codec instances. */
import { Decoder, Encoder } from '@msgpack/msgpack';

const encoder = new Encoder();
const decoder = new Decoder();

export function encodeFrame(frame: unknown): Uint8Array {
  return encoder.encode(frame);
}

/** Encodes into the encoder's own buffer: the bytes are valid until the next encode, so copy them at once. */
export function encodeFrameShared(frame: unknown): Uint8Array {
  return encoder.encodeSharedRef(frame);
}

/** Throws on bytes that are not one msgpack value. */
export function decodeFrame(data: Uint8Array): unknown {
  return decoder.decode(data);
}

/**
 * The fields of a server frame that a load generator acts on: which frame it is, which message or request it
 * answers, and where it came from. Everything else (a `msg`'s body, seq, ts, a card…) is skipped unread.
 */
export interface Envelope {
  type: string;
  cmid?: string;
  ref?: string;
  conv?: string;
  from?: string;
  code?: string;
  retryAfterMs?: number;
  node?: string;
}

/** The envelope's keys as bytes: a frame's keys are matched without being read into strings. */
const ENVELOPE_KEYS = (
  [
    'type',
    'cmid',
    'ref',
    'conv',
    'from',
    'code',
    'retryAfterMs',
    'node',
  ] as const satisfies readonly (keyof Envelope)[]
).map((k) => [k, Buffer.from(k)] as const);
const NESTED_DEPTH_MAX = 32;

/**
 * Reads a frame's envelope (issue #13: a generator decoded every `msg` in full, body and all, for the four
 * fields it compares; that was a quarter of its CPU). Throws on bytes that are not one msgpack map with a
 * string `type`.
 */
export function decodeEnvelope(data: Uint8Array): Envelope {
  const out = decodeEnvelopeFields(data);
  if (typeof out.type !== 'string') throw new Error('frame has no type');
  return out as Envelope;
}

/**
 * The envelope's keys of any msgpack map (a peer's message has no `type`). Scalars of those keys are read;
 * other values, and nested maps and arrays, are skipped by their lengths without being decoded. Throws on
 * bytes that are not one msgpack map.
 */
export function decodeEnvelopeFields(data: Uint8Array): Partial<Record<keyof Envelope, unknown>> {
  const r = new Reader(
    Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  );
  const n = r.mapHeader();
  if (n < 0) throw new Error('frame is not a msgpack map');
  const out: Partial<Record<keyof Envelope, unknown>> = {};
  for (let i = 0; i < n; i++) {
    const key = r.envelopeKey();
    if (key === undefined) r.skip(0);
    else out[key] = r.scalarOrSkip();
  }
  if (r.at !== data.length) throw new Error('trailing bytes after the frame');
  return out;
}

/** A cursor over one msgpack value; every read checks the bounds and throws on truncated input. */
class Reader {
  at = 0;

  constructor(private readonly b: Buffer) {}

  private need(n: number): void {
    if (this.at + n > this.b.length) throw new Error('truncated msgpack');
  }

  private byte(): number {
    this.need(1);
    return this.b[this.at++]!;
  }

  /** A big-endian unsigned integer of 1, 2 or 4 bytes. */
  private uint(bytes: 1 | 2 | 4): number {
    this.need(bytes);
    const b = this.b;
    const at = this.at;
    this.at += bytes;
    if (bytes === 1) return b[at]!;
    if (bytes === 2) return (b[at]! << 8) | b[at + 1]!;
    return b.readUInt32BE(at);
  }

  /** The entry count of a map at the cursor (consumed), or -1 when the value there is not a map. */
  mapHeader(): number {
    const t = this.b[this.at];
    if (t === undefined) return -1;
    if (t >= 0x80 && t <= 0x8f) {
      this.at++;
      return t & 0x0f;
    }
    if (t === 0xde || t === 0xdf) {
      this.at++;
      return this.uint(t === 0xde ? 2 : 4);
    }
    return -1;
  }

  /** A string's byte length at the cursor (header consumed), or -1 when the value there is not a string. */
  private strHeader(): number {
    const t = this.b[this.at];
    if (t === undefined) return -1;
    if (t >= 0xa0 && t <= 0xbf) {
      this.at++;
      return t & 0x1f;
    }
    if (t >= 0xd9 && t <= 0xdb) {
      this.at++;
      return this.uint(t === 0xd9 ? 1 : t === 0xda ? 2 : 4);
    }
    return -1;
  }

  /** A map key (consumed): the envelope's name for it, or undefined for any other key. */
  envelopeKey(): keyof Envelope | undefined {
    const len = this.strHeader();
    if (len < 0) {
      this.skip(0);
      return undefined;
    }
    this.need(len);
    const at = this.at;
    this.at += len;
    const b = this.b;
    search: for (const [name, bytes] of ENVELOPE_KEYS) {
      if (bytes.length !== len) continue;
      for (let i = 0; i < len; i++) if (b[at + i] !== bytes[i]) continue search;
      return name;
    }
    return undefined;
  }

  /** A string, number, boolean or nil at the cursor; a map, array, binary or extension is skipped (undefined). */
  scalarOrSkip(): unknown {
    const t = this.b[this.at];
    if (t === undefined) throw new Error('truncated msgpack');
    if (t <= 0x7f) {
      this.at++;
      return t;
    }
    if (t >= 0xe0) {
      this.at++;
      return t - 0x100;
    }
    const len = this.strHeader();
    if (len >= 0) {
      this.need(len);
      const s = this.b.toString('utf8', this.at, this.at + len);
      this.at += len;
      return s;
    }
    const b = this.b;
    this.at++;
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
      case 0xc3:
        return t === 0xc3;
      case 0xcc:
        return this.uint(1);
      case 0xcd:
        return this.uint(2);
      case 0xce:
        return this.uint(4);
      case 0xcf:
        this.need(8);
        this.at += 8;
        return Number(b.readBigUInt64BE(this.at - 8));
      case 0xd0:
        this.need(1);
        return b.readInt8(this.at++);
      case 0xd1:
        this.need(2);
        this.at += 2;
        return b.readInt16BE(this.at - 2);
      case 0xd2:
        this.need(4);
        this.at += 4;
        return b.readInt32BE(this.at - 4);
      case 0xd3:
        this.need(8);
        this.at += 8;
        return Number(b.readBigInt64BE(this.at - 8));
      case 0xca:
        this.need(4);
        this.at += 4;
        return b.readFloatBE(this.at - 4);
      case 0xcb:
        this.need(8);
        this.at += 8;
        return b.readDoubleBE(this.at - 8);
      default:
        this.at--;
        this.skip(0);
        return undefined;
    }
  }
  /** Consumes one value of any type, reading only the lengths it needs to step over it. */
  skip(depth: number): void {
    if (depth > NESTED_DEPTH_MAX) throw new Error('msgpack nested too deep');
    const t = this.byte();
    // What follows the type byte: `bytes` to step over, then `items` nested values to skip.
    let bytes = 0;
    let items = 0;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) bytes = 0;
    else if (t >= 0xa0 && t <= 0xbf) bytes = t & 0x1f;
    else if (t >= 0x80 && t <= 0x8f) items = 2 * (t & 0x0f);
    else if (t >= 0x90 && t <= 0x9f) items = t & 0x0f;
    else if (t >= 0xd4 && t <= 0xd8) bytes = 1 + (1 << (t - 0xd4));
    else
      switch (t) {
        case 0xc4:
        case 0xd9:
          bytes = this.uint(1);
          break;
        case 0xc5:
        case 0xda:
          bytes = this.uint(2);
          break;
        case 0xc6:
        case 0xdb:
          bytes = this.uint(4);
          break;
        case 0xc7:
          bytes = this.uint(1) + 1;
          break;
        case 0xc8:
          bytes = this.uint(2) + 1;
          break;
        case 0xc9:
          bytes = this.uint(4) + 1;
          break;
        case 0xcc:
        case 0xd0:
          bytes = 1;
          break;
        case 0xcd:
        case 0xd1:
          bytes = 2;
          break;
        case 0xca:
        case 0xce:
        case 0xd2:
          bytes = 4;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          bytes = 8;
          break;
        case 0xdc:
          items = this.uint(2);
          break;
        case 0xdd:
          items = this.uint(4);
          break;
        case 0xde:
          items = 2 * this.uint(2);
          break;
        case 0xdf:
          items = 2 * this.uint(4);
          break;
        default:
          throw new Error(`invalid msgpack type byte 0x${t.toString(16)}`);
      }
    this.advance(bytes);
    for (let i = 0; i < items; i++) this.skip(depth + 1);
  }

  private advance(n: number): void {
    this.need(n);
    this.at += n;
  }
}
