import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Piscina } from 'piscina';
import { POOL_THREAD_EXEC_ARGV } from '../../src/pool/text-pool.js';
import {
  BODY_ENC_UTF8,
  compressBodies,
  DEFAULT_BODY_ENC,
  DICTIONARIES,
  decompressBodies,
  type EncodedBody,
  MAX_INFLATED_BODY_BYTES,
} from '../../workers/compression.js';
import { OutputTooLargeError, ReusableZlib } from '../../workers/reusable-zlib.js';
import runTextTask, {
  type CompressResult,
  type DecompressResult,
  type FilterResult,
  type PiiTaskResult,
  type PolicyTaskResult,
  type TextTask,
} from '../../workers/text-worker.js';
import { CHAT_SAMPLE } from '../fixtures/chat-sample.js';
import { DICTIONARY_V1_SHA256, V1_ROWS } from '../fixtures/compressed-v1.js';

const ALL_ENCS = [BODY_ENC_UTF8, ...Object.keys(DICTIONARIES).map(Number)];
const TEXTS = [
  '',
  'a',
  'ok',
  'Hi, where is my order? It has not arrived yet.',
  '亲，您好，请问有什么可以帮您？',
  '快递到了吗 😀👍🏽 𠀀',
  'x'.repeat(100_000),
  ...CHAT_SAMPLE.slice(0, 20),
];
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
const average = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

test('compression - every body_enc round trips, and only known encodings are produced', () => {
  for (const enc of ALL_ENCS) {
    const items = compressBodies(TEXTS, enc);
    assert.equal(items.length, TEXTS.length);
    for (const item of items) assert.ok(item.enc === enc || item.enc === BODY_ENC_UTF8, `enc ${item.enc}`);
    assert.deepEqual(decompressBodies(items), TEXTS, `enc ${enc}`);
  }
  assert.ok(
    compressBodies(TEXTS).some((item) => item.enc === DEFAULT_BODY_ENC),
    'the default dictionary is used',
  );
});

test('compression - an unknown body_enc is an error naming the value', () => {
  const data = new Uint8Array([1, 2, 3]);
  assert.throws(() => decompressBodies([{ enc: 42, data }]), /unknown body_enc 42 \(known: 0, 1/);
  assert.throws(() => compressBodies(['hello'], 7), /unknown body_enc 7/);
});

test('compression - corrupt rows and oversized inflation are errors naming the item', () => {
  const good = compressBodies(['hello there, how are you?'])[0]!;
  assert.throws(() => decompressBodies([good, { enc: 1, data: new Uint8Array([0xff, 0xff, 0xff]) }]), {
    message: /item 1 \(body_enc 1\) does not inflate/,
  });
  assert.throws(() => decompressBodies([{ enc: 0, data: new Uint8Array([0xc3, 0x28]) }]), /not valid UTF-8/);
  const bomb = deflateRawSync(Buffer.alloc(MAX_INFLATED_BODY_BYTES + 1), { dictionary: DICTIONARIES[1] });
  assert.throws(() => decompressBodies([{ enc: 1, data: bomb }]), /item 0 \(body_enc 1\) does not inflate/);
});

test('compression - the dictionary saves at least 40% on the chat sample, plain deflate does not', () => {
  assert.ok(CHAT_SAMPLE.length >= 200);
  const raw = average(CHAT_SAMPLE.map(bytes));
  const stored = average(compressBodies(CHAT_SAMPLE).map((item) => item.data.byteLength));
  const plain = average(
    CHAT_SAMPLE.map((t) => Math.min(bytes(t), deflateRawSync(Buffer.from(t, 'utf8')).byteLength)),
  );
  const saving = 1 - stored / raw;
  // Measured when v1 was made: 42.3 bytes raw, 21.8 stored (48%), 41.1 with plain deflate (3%).
  assert.ok(saving >= 0.4, `dictionary saving ${(saving * 100).toFixed(1)}%`);
  assert.ok(1 - plain / raw < 0.1, `plain deflate saving ${((1 - plain / raw) * 100).toFixed(1)}%`);
});

test('compression - a body is never stored larger than its UTF-8 bytes', () => {
  for (const [i, item] of compressBodies(CHAT_SAMPLE).entries()) {
    assert.ok(item.data.byteLength <= bytes(CHAT_SAMPLE[i]!), CHAT_SAMPLE[i]);
  }
});

test('compression - incompressible or tiny text falls back to enc 0 with its UTF-8 bytes', () => {
  const texts = ['', 'k', 'Zq8#vW2!', 'ƻ⿲ꙮ𓂀ᚠ'];
  const items = compressBodies(texts);
  items.forEach((item, i) => {
    assert.equal(item.enc, BODY_ENC_UTF8, texts[i]);
    assert.deepEqual(Buffer.from(item.data), Buffer.from(texts[i]!, 'utf8'));
  });
});

test('compression - every body owns a buffer of exactly its size, so cloning it is cheap', () => {
  for (const item of compressBodies(['ok', '亲，您好', 'a longer message about a refund for my order'])) {
    assert.equal(item.data.buffer.byteLength, item.data.byteLength);
  }
});

test('compression - rows written with dictionary v1 still read', () => {
  assert.equal(createHash('sha256').update(DICTIONARIES[1]!).digest('hex'), DICTIONARY_V1_SHA256);
  const items: EncodedBody[] = V1_ROWS.map((row) => ({
    enc: row.enc,
    data: Buffer.from(row.base64, 'base64'),
  }));
  assert.deepEqual(
    decompressBodies(items),
    V1_ROWS.map((row) => row.text),
  );
});

test('compression - the dictionary fits the deflate window', () => {
  for (const dictionary of Object.values(DICTIONARIES)) assert.ok(dictionary.byteLength <= 32 * 1024);
});

test('text worker - compress and decompress ops round trip a batch', () => {
  const { items } = runTextTask({ op: 'compress', texts: TEXTS });
  assert.deepEqual(runTextTask({ op: 'decompress', items }).texts, TEXTS);
  const plain = runTextTask({ op: 'compress', texts: ['hello hello hello'], enc: 0 }).items;
  assert.equal(plain[0]?.enc, 0);
  assert.throws(
    () => runTextTask({ op: 'decompress', items: [{ enc: 1, data: 'x' }] as never }),
    /item 0 data must be a Uint8Array/,
  );
  assert.throws(
    () => runTextTask({ op: 'decompress', items: [{ enc: 9, data: new Uint8Array(1) }] }),
    /body_enc 9/,
  );
});

// The real pool over the compiled worker (dist/workers/text-worker.js): tasks and results cross the
// thread boundary by structured clone, as they will in the broker.
const WORKER_FILE = fileURLToPath(new URL('../../workers/text-worker.js', import.meta.url));

test('text worker pool - every op works through piscina, bodies cross as Uint8Array', async () => {
  const pool = new Piscina({
    filename: WORKER_FILE,
    minThreads: 2,
    maxThreads: 2,
    execArgv: [...POOL_THREAD_EXEC_ARGV],
  });
  const run = <R>(task: TextTask) => pool.run(task) as Promise<R>;
  try {
    const { items } = await run<CompressResult>({ op: 'compress', texts: CHAT_SAMPLE });
    assert.equal(items.length, CHAT_SAMPLE.length);
    assert.ok(items.every((item) => item.data instanceof Uint8Array));
    // Rows read back from Cassandra arrive as Buffers; they must be accepted as they are.
    const rows = items.map((item) => ({ enc: item.enc, data: Buffer.from(item.data) }));
    assert.deepEqual((await run<DecompressResult>({ op: 'decompress', items: rows })).texts, CHAT_SAMPLE);
    const v1 = V1_ROWS.map((row) => ({ enc: row.enc, data: Buffer.from(row.base64, 'base64') }));
    assert.deepEqual(
      (await run<DecompressResult>({ op: 'decompress', items: v1 })).texts,
      V1_ROWS.map((row) => row.text),
    );
    await assert.rejects(
      run({ op: 'decompress', items: [{ enc: 5, data: new Uint8Array(2) }] }),
      /body_enc 5/,
    );

    const pii = await run<PiiTaskResult>({ op: 'pii', texts: ['电话 13812345678', 'none'] });
    assert.deepEqual(
      pii.results.map((r) => r.text),
      ['电话 138****5678', 'none'],
    );
    const filtered = await run<FilterResult>({ op: 'filter', texts: ['a badword'] });
    assert.deepEqual(filtered.results, [{ text: 'a *******', hits: ['badword'] }]);
  } finally {
    await pool.close();
  }
});

test('text worker pool - a new policy version reaches every worker', async () => {
  const pool = new Piscina({
    filename: WORKER_FILE,
    minThreads: 2,
    maxThreads: 2,
    execArgv: [...POOL_THREAD_EXEC_ARGV],
  });
  const check = (version: string, action: 'mask' | 'block', texts: string[]) =>
    pool.run({
      op: 'policy',
      tenant: 'acme',
      policy: { version, rules: [{ words: ['refund scam'], action }] },
      texts,
    } satisfies TextTask) as Promise<PolicyTaskResult>;
  try {
    // Enough concurrent tasks that both threads compile version 1, then version 2.
    const first = await Promise.all(Array.from({ length: 16 }, () => check('1', 'mask', ['a refund scam'])));
    for (const out of first)
      assert.deepEqual(out.results[0], {
        text: 'a ***********',
        blocked: false,
        review: false,
        hits: [{ word: 'refund scam', action: 'mask' }],
      });
    const second = await Promise.all(
      Array.from({ length: 16 }, () => check('2', 'block', ['a refund scam'])),
    );
    for (const out of second) assert.equal(out.results[0]?.blocked, true);
    for (const out of second) assert.equal(out.results[0]?.text, 'a refund scam');
  } finally {
    await pool.close();
  }
});

test('compression - bodies from the reused deflate handle each inflate alone, with a fresh one-shot inflater', () => {
  const items = compressBodies([...CHAT_SAMPLE, 'x'.repeat(100_000), ...CHAT_SAMPLE.slice(0, 10)]);
  const texts = [...CHAT_SAMPLE, 'x'.repeat(100_000), ...CHAT_SAMPLE.slice(0, 10)];
  items.forEach((item, i) => {
    const text =
      item.enc === BODY_ENC_UTF8
        ? Buffer.from(item.data).toString('utf8')
        : inflateRawSync(item.data, { dictionary: DICTIONARIES[item.enc] }).toString('utf8');
    assert.equal(text, texts[i], `item ${i}`);
  });
});

test('compression - a corrupt row fails alone: the next batch still reads', () => {
  const good = compressBodies(CHAT_SAMPLE.slice(0, 5));
  assert.throws(
    () => decompressBodies([{ enc: 1, data: new Uint8Array([0xff, 0xff, 0xff]) }]),
    /does not inflate/,
  );
  assert.deepEqual(decompressBodies(good), CHAT_SAMPLE.slice(0, 5));
  assert.deepEqual(
    decompressBodies(compressBodies(CHAT_SAMPLE.slice(5, 10))),
    CHAT_SAMPLE.slice(5, 10),
    'deflate too',
  );
});

test('reusable zlib - one handle serves many bodies, outputs larger than its scratch and a bound on output', () => {
  const dictionary = DICTIONARIES[1] as Buffer;
  const deflater = new ReusableZlib('deflate', { level: 6, windowBits: 15, dictionary });
  const inflater = new ReusableZlib('inflate', { windowBits: 15, dictionary });
  assert.ok(ReusableZlib.supported(), 'this Node exposes what reuse needs');
  for (const text of CHAT_SAMPLE) {
    const packed = deflater.run(Buffer.from(text, 'utf8'));
    assert.equal(packed.buffer.byteLength, packed.byteLength, 'owns its buffer');
    assert.equal(inflater.run(packed).toString('utf8'), text);
  }
  assert.equal(deflater.reused, CHAT_SAMPLE.length, 'no new handle per body');
  assert.equal(inflater.reused, CHAT_SAMPLE.length);
  // Random bytes do not compress: the deflate output passes the 64 KiB scratch and comes in pieces.
  const big = randomBytes(200_000);
  const packedBig = deflater.run(big);
  assert.ok(packedBig.byteLength > 64 * 1024);
  assert.ok(inflater.run(packedBig).equals(big));
  assert.throws(() => inflater.run(packedBig, 100_000), OutputTooLargeError);
  assert.equal(inflater.run(deflater.run(Buffer.from('after the error'))).toString(), 'after the error');
});
