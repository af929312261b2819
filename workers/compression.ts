// Message-body compression for short chat texts: raw deflate primed with a preset dictionary.
// Pure CPU code with no I/O, so it runs on the piscina pool (see text-worker.ts) and in unit tests.

import type { ZlibOptions } from 'node:zlib';
import { DICT_DEFLATE_MAX_INPUT, DictDeflater } from './dict-deflate.js';
import { DICTIONARY_V1 } from './dictionaries/v1.js';
import { ReusableZlib } from './reusable-zlib.js';

/**
 * `body_enc` 0: the body is its UTF-8 bytes as they are. Always readable, needs no dictionary.
 * Every other value N is raw deflate (RFC 1951, no zlib header) primed with `DICTIONARIES[N]`.
 */
export const BODY_ENC_UTF8 = 0;

/** `body_enc` 1: raw deflate with the preset dictionary in workers/dictionaries/v1.ts. */
export const BODY_ENC_DEFLATE_V1 = 1;

/**
 * Every dictionary a reader may meet, by `body_enc`. Entries are only ever added (v2, v3, ...): rows
 * written with an older version stay in Cassandra and must keep reading. Frozen.
 */
export const DICTIONARIES: Readonly<Record<number, Buffer>> = Object.freeze({
  [BODY_ENC_DEFLATE_V1]: Buffer.from(DICTIONARY_V1, 'utf8'),
});

/**
 * The `body_enc` writers use when the task names none. Rolling out a new dictionary takes two
 * releases: first every node learns to read it (an entry in DICTIONARIES), then writers switch to it,
 * so no node ever meets a row it cannot read.
 */
export const DEFAULT_BODY_ENC = BODY_ENC_DEFLATE_V1;

/** Inflated bodies larger than this are refused, so a corrupt or hostile row cannot balloon memory. */
export const MAX_INFLATED_BODY_BYTES = 1024 * 1024;

// A 15-bit window is the largest deflate has (32 KiB), so the whole dictionary stays reachable.
// Level 6 with memLevel 8 stored exactly as few bytes as level 9 / memLevel 9 on the test sample of
// chat messages and ran 1.4x faster: most of the cost per text is priming the window, not searching.
const WINDOW_BITS = 15;
const DEFLATE_LEVEL = 6;
const DEFLATE_MEM_LEVEL = 8;
const DEFLATE_OPTIONS: ZlibOptions = {
  level: DEFLATE_LEVEL,
  windowBits: WINDOW_BITS,
  memLevel: DEFLATE_MEM_LEVEL,
};

/** One stored body: how it is encoded and its bytes. */
export interface EncodedBody {
  readonly enc: number;
  readonly data: Uint8Array;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

// Node's zlib and Buffer.from hand out views into larger pooled ArrayBuffers (16 KiB zlib chunks,
// the 8 KiB Buffer pool). Structured clone, which piscina uses for results, copies a view's whole
// ArrayBuffer, so every body gets a buffer of its own exact size before it leaves the worker.
function ownBytes(view: Uint8Array): Uint8Array {
  return new Uint8Array(view);
}

// One deflate and one inflate handle per dictionary and thread, reset between bodies (reusable-zlib.ts):
// creating a handle and priming it with the dictionary for every body cost about 40 % of compressing
// a chat text and 90 % of inflating one (issue #13).
const deflaters = new Map<number, ReusableZlib>();
const inflaters = new Map<number, ReusableZlib>();

function deflaterFor(enc: number): ReusableZlib {
  let z = deflaters.get(enc);
  if (z === undefined) {
    z = new ReusableZlib('deflate', { ...DEFLATE_OPTIONS, dictionary: dictionaryFor(enc) });
    deflaters.set(enc, z);
  }
  return z;
}

function inflaterFor(enc: number): ReusableZlib {
  let z = inflaters.get(enc);
  if (z === undefined) {
    z = new ReusableZlib('inflate', { windowBits: WINDOW_BITS, dictionary: dictionaryFor(enc) });
    inflaters.set(enc, z);
  }
  return z;
}

// Short texts are deflated by dict-deflate.ts, whose match index of the dictionary is built once per
// thread, instead of zlib, which primes itself with the whole dictionary for every body (~30 of a
// ~35 µs compress, issue #13). Each of its results is inflated by zlib before it is used; one that
// does not give the text back is counted and replaced by zlib's.
const dictDeflaters = new Map<number, DictDeflater>();
let dictDeflateFallbacks = 0;

/** Results of dict-deflate.ts that did not inflate back to their text (zlib's were used): 0 unless a bug. */
export function dictDeflateFallbackCount(): number {
  return dictDeflateFallbacks;
}

function dictDeflaterFor(enc: number): DictDeflater {
  let d = dictDeflaters.get(enc);
  if (d === undefined) {
    d = new DictDeflater(dictionaryFor(enc));
    dictDeflaters.set(enc, d);
  }
  return d;
}

/** The deflated body of `raw`: dict-deflate.ts's for a short text, checked by inflating it, else zlib's. */
function deflateBody(raw: Buffer, enc: number): Uint8Array {
  if (raw.length <= DICT_DEFLATE_MAX_INPUT) {
    const packed = dictDeflaterFor(enc).deflate(raw);
    let back: Buffer | undefined;
    try {
      back = inflaterFor(enc).run(packed, raw.length);
    } catch {
      back = undefined;
    }
    if (back?.equals(raw)) return packed;
    dictDeflateFallbacks++;
  }
  // run() answers a Buffer of its own exact size: no copy needed.
  return deflaterFor(enc).run(raw);
}

function dictionaryFor(enc: number): Buffer {
  const dictionary = DICTIONARIES[enc];
  if (dictionary === undefined) {
    const known = [BODY_ENC_UTF8, ...Object.keys(DICTIONARIES).map(Number)].join(', ');
    throw new Error(`compression: unknown body_enc ${JSON.stringify(enc)} (known: ${known})`);
  }
  return dictionary;
}

/**
 * Encodes each text for storage, in input order. A text is stored as `enc` (default DEFAULT_BODY_ENC)
 * only when that is strictly smaller than its UTF-8 bytes; otherwise as `BODY_ENC_UTF8`. Each `data`
 * owns an ArrayBuffer of exactly its length. Throws an Error when `enc` is neither 0 nor a known
 * dictionary version.
 */
export function compressBodies(texts: readonly string[], enc: number = DEFAULT_BODY_ENC): EncodedBody[] {
  if (enc === BODY_ENC_UTF8) return texts.map((text) => utf8Body(text));
  dictionaryFor(enc); // an unknown enc throws here, before any text
  return texts.map((text) => {
    const raw = Buffer.from(text, 'utf8');
    // Deflate's own header and end-of-block cost about 2 bytes, so the tiniest texts never win.
    if (raw.length <= 2) return { enc: BODY_ENC_UTF8, data: ownBytes(raw) };
    const packed = deflateBody(raw, enc);
    return packed.length < raw.length ? { enc, data: packed } : { enc: BODY_ENC_UTF8, data: ownBytes(raw) };
  });
}

function utf8Body(text: string): EncodedBody {
  return { enc: BODY_ENC_UTF8, data: ownBytes(Buffer.from(text, 'utf8')) };
}

/**
 * Decodes stored bodies back to text, in input order, for every `enc` in DICTIONARIES and for 0.
 * Throws an Error naming the value for an unknown `enc`, and an Error naming the item's index for
 * bytes that do not inflate, inflate past MAX_INFLATED_BODY_BYTES, or are not valid UTF-8.
 */
export function decompressBodies(items: readonly EncodedBody[]): string[] {
  return items.map((item, index) => {
    const { enc, data } = item;
    if (!(data instanceof Uint8Array)) {
      throw new Error(`compression: item ${index} data must be a Uint8Array`);
    }
    if (enc === BODY_ENC_UTF8) return decodeUtf8(data, index);
    const inflater = inflaterFor(enc);
    let inflated: Buffer;
    try {
      inflated = inflater.run(data, MAX_INFLATED_BODY_BYTES);
    } catch (err) {
      // A corrupt body, or one that inflates past MAX_INFLATED_BODY_BYTES (OutputTooLargeError).
      throw new Error(`compression: item ${index} (body_enc ${enc}) does not inflate`, { cause: err });
    }
    return decodeUtf8(inflated, index);
  });
}

function decodeUtf8(bytes: Uint8Array, index: number): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch (err) {
    throw new Error(`compression: item ${index} is not valid UTF-8`, { cause: err });
  }
}
