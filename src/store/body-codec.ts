/**
 * How message bodies are stored: `body_enc` 0 is UTF-8, N > 0 is raw deflate primed with dictionary
 * version N (workers/compression.ts, the same pure code the pool runs). Writers compress on the worker
 * pool in micro-batches (BodyEncoder); readers decode inline: a pool task takes the same wall time
 * (Node's per-inflate zlib handle dominates, ~30-50 µs per body) and the owner's cache holds decoded
 * rows (measured by `npm run bench -- storage`; docs/ARCHITECTURE.md "Compression").
 */
import {
  BODY_ENC_UTF8,
  compressBodies,
  DEFAULT_BODY_ENC,
  decompressBodies,
  type EncodedBody,
} from '../../workers/compression.js';

export { BODY_ENC_UTF8, DEFAULT_BODY_ENC, type EncodedBody };

/** Turns texts into stored bodies, one per text in order (the pool's `compress` op). */
export interface BodyEncoder {
  encode(texts: readonly string[]): Promise<EncodedBody[]>;
  /** Whether it compresses (then a body the gateway encoded with its screen is written as it is). */
  readonly compresses: boolean;
}

/** Stores bodies as UTF-8 as they are (no pool): the encoder when compression is off. */
export const plainEncoder: BodyEncoder = {
  encode: (texts) => Promise.resolve(texts.map((text) => ({ enc: BODY_ENC_UTF8, data: utf8(text) }))),
  compresses: false,
};

/** Compresses on the calling thread (tools, tests); a node uses the pool's encoder. */
export const inlineEncoder: BodyEncoder = {
  encode: (texts) => Promise.resolve(compressBodies(texts)),
  compresses: true,
};

/** Compresses on the worker pool: each text joins the pool's `compress` micro-batch. */
export function poolEncoder(pool: { compress(text: string): Promise<EncodedBody> }): BodyEncoder {
  return { encode: (texts) => Promise.all(texts.map((text) => pool.compress(text))), compresses: true };
}

/**
 * Bodies encoded before their row existed: a chat message's text is screened and encoded by its
 * gateway in one pool task (TextPoolOptions.storeScreened), so the owner that writes the row needs no
 * `compress` task (issue #13: every pool hand-off wakes two threads). Keyed by the row object, with the
 * text that was encoded: the store writes these bytes only for a row whose body is still that text.
 */
const encodedBefore = new WeakMap<object, { text: string; body: EncodedBody }>();

export function setEncodedBody(row: { body: string }, body: EncodedBody): void {
  encodedBefore.set(row, { text: row.body, body });
}

/** The body encoded for `row` before it existed (taken: asked once per row), if it is still its text. */
export function takeEncodedBody(row: { body: string }): EncodedBody | undefined {
  const e = encodedBefore.get(row);
  if (e === undefined) return undefined;
  encodedBefore.delete(row);
  return e.text === row.body ? e.body : undefined;
}

/** Whether `v` is an EncodedBody (as it arrives from another member). */
export function isEncodedBody(v: unknown): v is EncodedBody {
  const b = v as EncodedBody | null;
  return typeof b === 'object' && b !== null && Number.isInteger(b.enc) && b.data instanceof Uint8Array;
}

export function utf8(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** Decodes one stored body. Throws an Error for an unknown body_enc or bytes that do not decode. */
export function decodeBody(enc: number, data: Buffer): string {
  if (enc === BODY_ENC_UTF8) return data.toString('utf8');
  return decompressBodies([{ enc, data }])[0] as string;
}
