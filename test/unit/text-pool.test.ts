import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTextPool, parseTextPoolOptions } from '../../src/pool/text-pool.js';
import { BusyError } from '../../src/protocol/errors.js';
import { BODY_ENC_UTF8, decodeBody } from '../../src/store/body-codec.js';

// Runs the real piscina pool over the compiled worker (dist/workers/text-worker.js).

test('text pool - masks badword and reports the hit', async () => {
  const pool = createTextPool({ threads: 1, maxQueue: 8, batchTexts: 16, intervalMs: 1 });
  try {
    assert.deepEqual(await pool.filter('what a badword!'), { text: 'what a *******!', hits: ['badword'] });
    assert.deepEqual(await pool.filter('nothing to see'), { text: 'nothing to see', hits: [] });
  } finally {
    await pool.close();
  }
});

test('text pool - no thread until the first task, and none again once idle for idleMs (issue #14)', async () => {
  const pool = createTextPool({ threads: 2, maxQueue: 8, batchTexts: 16, intervalMs: 1, idleMs: 300 });
  try {
    assert.equal(pool.stats().threads, 0, 'an idle pool starts no isolate');
    assert.deepEqual(await pool.filter('a badword'), { text: 'a *******', hits: ['badword'] });
    assert.ok(pool.stats().threads >= 1, 'the first task started a thread');
    const deadline = Date.now() + 5000;
    while (pool.stats().threads > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(pool.stats().threads, 0, 'the idle thread stopped');
    assert.deepEqual(await pool.filter('badword again'), { text: '******* again', hits: ['badword'] });
  } finally {
    await pool.close();
  }
});

test('text pool - concurrent texts each get their own result across micro-batches', async () => {
  const pool = createTextPool({ threads: 2, maxQueue: 64, batchTexts: 7, intervalMs: 2 });
  try {
    const n = 300;
    const texts = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? `#${i} badword #${i}` : `#${i} clean`));
    const results = await Promise.all(texts.map((t) => pool.filter(t)));
    results.forEach((r, i) => {
      if (i % 3 === 0) assert.deepEqual(r, { text: `#${i} ******* #${i}`, hits: ['badword'] }, `text ${i}`);
      else assert.deepEqual(r, { text: `#${i} clean`, hits: [] }, `text ${i}`);
    });
    assert.equal(pool.stats().completed, n);
    assert.equal(pool.stats().buffered, 0);
  } finally {
    await pool.close();
  }
});

test('text pool - a full queue rejects with busy and every accepted text is still right', async () => {
  const pool = createTextPool({ threads: 1, maxQueue: 1, batchTexts: 1, intervalMs: 0 });
  try {
    // Warm the worker so the burst below meets a running thread, not a starting one.
    await pool.filter('warm up');
    const n = 200;
    const settled = await Promise.allSettled(
      Array.from({ length: n }, (_, i) => pool.filter(`${i} badword ${'x'.repeat(2000)}`)),
    );
    let busy = 0;
    let ok = 0;
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') {
        ok++;
        assert.deepEqual(
          s.value,
          { text: `${i} ******* ${'x'.repeat(2000)}`, hits: ['badword'] },
          `text ${i}`,
        );
      } else {
        busy++;
        const err = s.reason as unknown;
        assert.ok(err instanceof BusyError, `text ${i} rejected with ${String(err)}`);
        assert.equal(err.code, 'busy');
        assert.equal(err.capacity, 1);
        assert.ok(err.retryAfterMs !== undefined && err.retryAfterMs > 0);
      }
    });
    assert.ok(busy > 0, 'some texts are refused');
    assert.ok(ok > 0, 'some texts are served');
    assert.equal(busy + ok, n);
    // After the burst the pool serves again.
    assert.deepEqual(await pool.filter('badword'), { text: '*******', hits: ['badword'] });
  } finally {
    await pool.close();
  }
});

test('text pool - close resolves after use', async () => {
  const pool = createTextPool({ threads: 1, maxQueue: 4, batchTexts: 4, intervalMs: 1 });
  assert.deepEqual(await pool.filter('idiot'), { text: '*****', hits: ['idiot'] });
  await pool.close();
  assert.deepEqual(pool.stats(), {
    buffered: 0,
    queuedBatches: 0,
    completed: 1,
    tasks: 1,
    rejected: 0,
    threads: 0,
    compressFallbacks: 0,
  });
});

test('text pool - filter after close rejects instead of starting a new worker', async () => {
  const pool = createTextPool({ threads: 1, maxQueue: 4, batchTexts: 4, intervalMs: 1 });
  await pool.close();
  await assert.rejects(pool.filter('after close'));
});

test('text pool - close with texts still buffered settles them and does not crash the process', async () => {
  const script = fileURLToPath(new URL('../fixtures/pool-close-while-buffered.js', import.meta.url));
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [script], { timeout: 20_000 }).catch((err) => {
    assert.fail(
      `the process died: ${String(err.stderr ?? err)
        .split('\n')
        .slice(0, 6)
        .join('\n')}`,
    );
  });
  const settled = JSON.parse(stdout.trim()) as Array<{ ok?: unknown; error?: string }>;
  assert.equal(settled.length, 2);
  const expected = [
    { text: 'a *******', hits: ['badword'] },
    { text: 'b clean', hits: [] },
  ];
  // Each pending text is either served correctly or refused; none hangs or gets a wrong result.
  settled.forEach((s, i) => {
    if ('ok' in s) assert.deepEqual(s.ok, expected[i]);
    else assert.equal(typeof s.error, 'string');
  });
});

test('text pool - every op is micro-batched: many inputs per task', async () => {
  const pool = createTextPool({ threads: 1, maxQueue: 64, batchTexts: 32, intervalMs: 5 });
  try {
    const n = 256;
    const texts = Array.from({ length: n }, (_, i) => `order ${i}: call me on 13812345678, thanks 谢谢`);
    const policy = { version: 'v1', rules: [{ words: ['order'], action: 'review' as const }] };
    const [pii, policed, stored] = await Promise.all([
      Promise.all(texts.map((t) => pool.pii(t))),
      Promise.all(texts.map((t) => pool.policy('t1', policy, t))),
      Promise.all(texts.map((t) => pool.compress(t))),
    ]);
    const read = await Promise.all(stored.map((b) => pool.decompress(b)));
    assert.deepEqual(read, texts);
    assert.ok(pii.every((r) => r.found.length === 1 && r.found[0]?.kind === 'phone'));
    assert.ok(policed.every((r) => r.review && !r.blocked));
    assert.ok(stored.every((b) => b.enc === 1));
    const { completed, tasks } = pool.stats();
    assert.equal(completed, 4 * n);
    // 4 ops × 256 inputs in batches of at most 32: 32 tasks when every batch is full.
    assert.ok(tasks <= 40, `${tasks} tasks for ${completed} inputs`);
  } finally {
    await pool.close();
  }
});

test('text pool - inputs buffered over all lanes are bounded: past maxBuffered is busy at once', async () => {
  const pool = createTextPool({ threads: 1, maxQueue: 16, batchTexts: 10, intervalMs: 50, maxBuffered: 5 });
  try {
    const tenants = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const policy = { version: 'v1', rules: [{ words: ['x'], action: 'mask' as const }] };
    // Seven tenants, one text each: seven lanes, none full, so all would linger — only five may.
    const settled = await Promise.allSettled(tenants.map((t) => pool.policy(t, policy, 'x y')));
    const busy = settled.filter((s) => s.status === 'rejected');
    assert.equal(busy.length, 2);
    for (const s of busy) assert.ok((s as PromiseRejectedResult).reason instanceof BusyError);
    assert.equal(pool.stats().rejected, 2);
  } finally {
    await pool.close();
  }
});

test('text pool - with storeScreened, screen also encodes each text it passes as compress would, in the same task', async () => {
  const pool = createTextPool({
    threads: 1,
    maxQueue: 8,
    batchTexts: 16,
    intervalMs: 1,
    storeScreened: true,
  });
  try {
    const text = 'Hello, where is my order? It was due yesterday, badword. '.repeat(3);
    const tasks = pool.stats().tasks;
    const screened = await pool.screen('t1', undefined, text);
    assert.equal(pool.stats().tasks - tasks, 1, 'one task');
    assert.ok(screened.stored !== undefined && screened.stored.enc !== BODY_ENC_UTF8, 'compressed');
    assert.deepEqual(
      screened.stored,
      await pool.compress(screened.text),
      'the bytes compress gives the screened text',
    );
    assert.equal(decodeBody(screened.stored.enc, Buffer.from(screened.stored.data)), screened.text);
    const blocking = { version: 'v1', rules: [{ words: ['refund'], action: 'block' as const }] };
    assert.equal(
      (await pool.screen('t1', blocking, 'refund please')).stored,
      undefined,
      'a blocked text is not stored',
    );
  } finally {
    await pool.close();
  }
  const without = createTextPool({ threads: 1, maxQueue: 8, batchTexts: 16, intervalMs: 1 });
  try {
    assert.equal((await without.screen('t1', undefined, 'hello there')).stored, undefined, 'off by default');
  } finally {
    await without.close();
  }
});

test('text pool - screen applies the word list or the tenant policy, then masks PII, in one task per batch', async () => {
  const pool = createTextPool({ threads: 1, maxQueue: 8, batchTexts: 16, intervalMs: 1 });
  try {
    const plain = await pool.screen('t1', undefined, 'badword, call 13800138000');
    assert.equal(plain.text, '*******, call 13800138000', 'visitors see their text with words masked');
    assert.notEqual(plain.agentText, plain.text, 'agents see the phone number masked');
    assert.doesNotMatch(plain.agentText, /13800138000/);
    assert.deepEqual(plain.hits, [{ word: 'badword', action: 'mask' }]);
    const blocking = { version: 'v1', rules: [{ words: ['refund'], action: 'block' as const }] };
    const blocked = await pool.screen('t1', blocking, 'refund 13800138000');
    assert.equal(blocked.blocked, true);
    assert.equal(
      blocked.agentText,
      blocked.text,
      'a blocked text is not masked for agents: it is never stored',
    );
    const tasks = pool.stats().tasks;
    await Promise.all(Array.from({ length: 10 }, (_, i) => pool.screen('t1', undefined, `text ${i}`)));
    assert.ok(pool.stats().tasks - tasks < 10, 'screens are micro-batched');
  } finally {
    await pool.close();
  }
});

test('text pool - lanes of one moment share a task; inputs gather while every thread is busy', async () => {
  const pool = createTextPool({ threads: 1, maxQueue: 8, batchTexts: 64, intervalMs: 0 });
  try {
    await pool.filter('warm up');
    const before = pool.stats().tasks;
    const [screened, stored] = await Promise.all([
      pool.screen('t1', undefined, 'badword'),
      pool.compress('hello hello'),
    ]);
    assert.equal(screened.text, '*******');
    assert.equal(await pool.decompress(stored), 'hello hello');
    // screen + compress in one task, then the decompress.
    assert.equal(pool.stats().tasks - before, 2);
    // A long first task holds the only thread: the 100 texts after it leave together when it returns.
    const start = pool.stats().tasks;
    const first = pool.filter(`badword ${'x'.repeat(200_000)}`);
    await new Promise((r) => setTimeout(r, 1));
    const rest = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.filter(`${i} badword`)));
    await first;
    for (const [i, r] of rest.entries()) assert.equal(r.text, `${i} *******`);
    assert.ok(pool.stats().tasks - start <= 3, `${pool.stats().tasks - start} tasks for 51 texts`);
    assert.equal(pool.stats().buffered, 0);
  } finally {
    await pool.close();
  }
});

test('text pool - options are validated with fixed messages', () => {
  const base = { threads: 1, maxQueue: 1, batchTexts: 1, intervalMs: 0 };
  const cases: [Record<string, number>, string][] = [
    [{ threads: 0 }, 'pool.threads must be a positive integer'],
    [{ maxQueue: 1.5 }, 'pool.maxQueue must be a positive integer'],
    [{ batchTexts: -1 }, 'pool.batchTexts must be a positive integer'],
    [{ intervalMs: -1 }, 'pool.intervalMs must be a non-negative integer'],
    [{ maxBuffered: 0 }, 'pool.maxBuffered must be a positive integer'],
    [{ idleMs: 0 }, 'pool.idleMs must be a positive integer'],
  ];
  for (const [extra, message] of cases) {
    assert.throws(() => parseTextPoolOptions({ ...base, ...extra }), { message });
  }
  assert.equal(parseTextPoolOptions(base).maxBuffered, 1);
});

test('text pool - a text reaching a quiet pool leaves at once; the next waits out the interval (issue #13)', async () => {
  const pool = createTextPool({ threads: 1, maxQueue: 8, batchTexts: 16, intervalMs: 3000 });
  try {
    let t0 = performance.now();
    assert.deepEqual(await pool.filter('a badword'), { text: 'a *******', hits: ['badword'] });
    const first = performance.now() - t0;
    assert.ok(first < 2500, `the first text waited ${first.toFixed(0)} ms: a quiet pool must not delay it`);
    t0 = performance.now();
    await pool.filter('again');
    const second = performance.now() - t0;
    assert.ok(
      second >= 3000 - first - 50,
      `the second text left ${second.toFixed(0)} ms later, inside the interval`,
    );
  } finally {
    await pool.close();
  }
});

test('text pool - under a steady stream at most one task leaves per interval, each text answered (issue #13)', async () => {
  const pool = createTextPool({ threads: 1, maxQueue: 64, batchTexts: 64, intervalMs: 50 });
  try {
    const pending: Promise<unknown>[] = [];
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) {
      pending.push(pool.filter(`${i} badword`).then((r) => assert.equal(r.text, `${i} *******`)));
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(pending);
    const elapsed = performance.now() - t0;
    const { tasks, completed } = pool.stats();
    assert.equal(completed, 100);
    assert.ok(tasks <= Math.ceil(elapsed / 50) + 1, `${tasks} tasks in ${elapsed.toFixed(0)} ms`);
    assert.ok(tasks >= 3, `${tasks} tasks: texts still leave every interval`);
  } finally {
    await pool.close();
  }
});
