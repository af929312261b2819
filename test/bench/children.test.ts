/**
 * The bench's process plumbing (bench/lib/children.ts, bench/lib/cli-process.ts): a generator runs in a
 * session of its own, so the kernel's autogroup scheduling gives it its own CPU share as it gives each of
 * the node's workers, and still leaves when the orchestrator does; a started node's pid is known from its
 * spawn, so a restart's start-up is sampled as the broker's.
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { forkChild } from '../../bench/lib/children.js';
import { startScript } from '../../bench/lib/cli-process.js';
import { readProcStat } from '../../bench/lib/proc.js';

const sessionOf = (pid: number): number | undefined => readProcStat(pid)?.session;

test('bench children - a generator leads its own session and exits when the orchestrator disconnects', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sb-children-'));
  try {
    const childrenJs = new URL('../../bench/lib/children.js', import.meta.url).href;
    const module = join(dir, 'child.mjs');
    await writeFile(
      module,
      `import { parentChannel } from ${JSON.stringify(childrenJs)};
const ch = parentChannel(() => {});
ch.send({ pid: process.pid });
setInterval(() => {}, 1000);
`,
    );
    const child = forkChild<never, { pid: number }>(module);
    try {
      const hello = await new Promise<{ pid: number }>((resolve) => child.onMessage(resolve));
      assert.equal(hello.pid, child.pid);
      assert.equal(sessionOf(child.pid), child.pid, 'the generator is its session leader');
      assert.notEqual(sessionOf(child.pid), sessionOf(process.pid));
    } finally {
      await child.stop();
    }
    // Left on the disconnect by itself (exit code 0), not killed after the grace period.
    assert.deepEqual(await child.exited, { code: 0, signal: null });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bench children - a started script tells its pid at spawn, before its ready line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sb-children-'));
  try {
    const script = join(dir, 'server.mjs');
    await writeFile(
      script,
      `setTimeout(() => console.log(JSON.stringify({ ready: true, port: 1 })), 300);
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);
`,
    );
    let spawned: number | undefined;
    const started = startScript<{ port: number }>(
      script,
      [],
      process.env,
      join(dir, 'log'),
      10_000,
      (pid) => {
        spawned = pid;
      },
    );
    // Told at once: the script prints its ready line only 300 ms later.
    assert.notEqual(spawned, undefined);
    const proc = await started;
    assert.equal(proc.pid, spawned);
    assert.equal(proc.ready.port, 1);
    await proc.stop(5000);
    assert.equal(proc.isRunning(), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
