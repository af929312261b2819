/**
 * workers/dict-deflate.ts: raw deflate against a preset dictionary, read back by zlib's own inflater
 * (the stored format must stay plain deflate), on chat texts, random bytes, long repeats, matches that
 * run from the dictionary into the text, and dictionaries larger than the 32 KiB window.
 */
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import {
  compressBodies,
  DICTIONARIES,
  decompressBodies,
  dictDeflateFallbackCount,
} from '../../workers/compression.js';
import { DICT_DEFLATE_MAX_INPUT, DictDeflater } from '../../workers/dict-deflate.js';
import runTextTask, { type CompressResult } from '../../workers/text-worker.js';
import { CHAT_SAMPLE } from '../fixtures/chat-sample.js';

const V1 = DICTIONARIES[1] as Buffer;

function roundTrips(d: DictDeflater, dictionary: Uint8Array, input: Buffer, what: string): number {
  const packed = d.deflate(input);
  const back = inflateRawSync(packed, { windowBits: 15, dictionary });
  assert.ok(back.equals(input), `${what}: inflates back to its input`);
  assert.equal(packed.byteLength, packed.buffer.byteLength, `${what}: owns a buffer of exactly its size`);
  return packed.byteLength;
}

test('dict-deflate - zlib inflates every chat text back, and it stores no more than zlib does', () => {
  const d = new DictDeflater(V1);
  let mine = 0;
  let zlib = 0;
  for (const [i, text] of CHAT_SAMPLE.entries()) {
    const raw = Buffer.from(text, 'utf8');
    mine += Math.min(raw.length, roundTrips(d, V1, raw, `sample ${i}`));
    zlib += Math.min(raw.length, deflateRawSync(raw, { level: 6, dictionary: V1 }).length);
  }
  // Fixed codes against zlib's choice of fixed or dynamic ones: within 1 % on the sample.
  assert.ok(mine <= zlib * 1.01, `${mine} bytes against zlib's ${zlib}`);
});

test('dict-deflate - random bytes, empty input, long runs, overlapping copies and the size limit', () => {
  const d = new DictDeflater(V1);
  roundTrips(d, V1, Buffer.alloc(0), 'empty');
  roundTrips(d, V1, Buffer.from('a'), 'one byte');
  // A run longer than one match (258) and a copy that overlaps the bytes it produces.
  roundTrips(d, V1, Buffer.alloc(DICT_DEFLATE_MAX_INPUT, 0x61), 'a run');
  roundTrips(d, V1, Buffer.from('abcabcabcabcabcabcabcabcabcabcabcabcabcab'), 'a short period');
  for (let i = 0; i < 300; i++) {
    const n = i % 2 === 0 ? i : Math.floor(Math.random() * (DICT_DEFLATE_MAX_INPUT + 1));
    // Low-entropy bytes match often, including against each other and the dictionary.
    const alphabet = i % 3 === 0 ? 256 : 4 + (i % 7);
    const input = Buffer.from(Array.from(randomBytes(n), (b) => (b % alphabet) + (alphabet < 256 ? 97 : 0)));
    roundTrips(d, V1, input, `random ${i} (${n} bytes, alphabet ${alphabet})`);
  }
  assert.throws(() => d.deflate(Buffer.alloc(DICT_DEFLATE_MAX_INPUT + 1)), RangeError);
});

test('dict-deflate - matches run from the dictionary into the text; a dictionary past 32 KiB uses its tail', () => {
  // Text that starts with the dictionary's last bytes and repeats them: a match crosses the boundary.
  const tail = V1.subarray(V1.length - 40);
  const d = new DictDeflater(V1);
  const crossing = Buffer.concat([tail, tail, Buffer.from(' thanks')]);
  assert.ok(roundTrips(d, V1, crossing, 'crossing') < 20, 'the repeats are matches, not literals');

  const big = Buffer.concat([
    randomBytes(10_000),
    Buffer.from('only-at-the-start-of-the-dictionary'),
    randomBytes(30_000),
  ]);
  const far = new DictDeflater(big);
  roundTrips(far, big, Buffer.from('only-at-the-start-of-the-dictionary'), 'a phrase beyond the window');
  const near = Buffer.from(big.subarray(big.length - 100, big.length - 30));
  assert.ok(roundTrips(far, big, near, 'a phrase in the window') < 20, 'a phrase in the window is a match');
});

test('dict-deflate - compressBodies uses it for short texts and never needed zlib instead', () => {
  const before = dictDeflateFallbackCount();
  const texts = [...CHAT_SAMPLE, 'x'.repeat(DICT_DEFLATE_MAX_INPUT + 10)];
  const items = compressBodies(texts);
  const d = new DictDeflater(V1);
  for (const [i, text] of CHAT_SAMPLE.entries()) {
    const item = items[i]!;
    if (item.enc === 1) assert.deepEqual(item.data, d.deflate(Buffer.from(text, 'utf8')), `sample ${i}`);
  }
  // The long text went to zlib: still readable.
  assert.equal(inflateRawSync(items.at(-1)!.data, { dictionary: V1 }).toString(), texts.at(-1));
  assert.equal(dictDeflateFallbackCount(), before);
});

test('dict-deflate - a result that does not inflate back is replaced by zlib, counted, and reported by the task', () => {
  const real = DictDeflater.prototype.deflate;
  const before = dictDeflateFallbackCount();
  // A broken encoder: a valid deflate stream of other bytes, then bytes that are no deflate at all.
  let call = 0;
  DictDeflater.prototype.deflate = (): Uint8Array => {
    call++;
    return call % 2 === 1
      ? deflateRawSync(Buffer.from('something else'), { dictionary: V1 })
      : new Uint8Array([0xff]);
  };
  try {
    const texts = CHAT_SAMPLE.filter((t) => Buffer.byteLength(t) > 2).slice(0, 6);
    const result = runTextTask({ op: 'compress', texts }) as CompressResult;
    assert.deepEqual(decompressBodies(result.items), texts, 'stored bodies are still the texts');
    assert.equal(result.fallbacks, 6);
    assert.equal(dictDeflateFallbackCount(), before + 6);
  } finally {
    DictDeflater.prototype.deflate = real;
  }
  const ok = runTextTask({ op: 'compress', texts: CHAT_SAMPLE.slice(0, 6) }) as CompressResult;
  assert.equal(ok.fallbacks, undefined, 'no fallbacks: the field is absent');
});
