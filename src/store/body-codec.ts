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
}

/** Stores bodies as UTF-8 as they are (no pool): the encoder when compression is off. */
export const plainEncoder: BodyEncoder = {
  encode: (texts) => Promise.resolve(texts.map((text) => ({ enc: BODY_ENC_UTF8, data: utf8(text) }))),
};

/** Compresses on the calling thread (tools, tests); a node uses the pool's encoder. */
export const inlineEncoder: BodyEncoder = {
  encode: (texts) => Promise.resolve(compressBodies(texts)),
};

/** Compresses on the worker pool: each text joins the pool's `compress` micro-batch. */
export function poolEncoder(pool: { compress(text: string): Promise<EncodedBody> }): BodyEncoder {
  return { encode: (texts) => Promise.all(texts.map((text) => pool.compress(text))) };
}

export function utf8(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** Decodes one stored body. Throws an Error for an unknown body_enc or bytes that do not decode. */
export function decodeBody(enc: number, data: Buffer): string {
  if (enc === BODY_ENC_UTF8) return data.toString('utf8');
  return decompressBodies([{ enc, data }])[0] as string;
}
