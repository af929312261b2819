/**
 * deploy/Dockerfile without a container engine: the runtime stage is read (base image, user, ENV,
 * EXPOSE, HEALTHCHECK, ENTRYPOINT + CMD) and its command is run as a plain process from the repository
 * root, laid out as the image's /app is (dist/, node_modules/, deploy/docker/). The node must come up,
 * the HEALTHCHECK command must pass against it, and SIGTERM must drain it to a clean exit.
 */
import * as assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../../src/stack/process.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET, TEST_NATS_URL } from '../harness/env.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Stage {
  from: string;
  instructions: Array<{ op: string; args: string }>;
}

/** The Dockerfile's stages, with line continuations joined and comments dropped. */
function stages(text: string): Stage[] {
  const lines = text.replace(/\\\n\s*/g, ' ').split('\n');
  const out: Stage[] = [];
  const args: Record<string, string> = {};
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [op, ...rest] = line.split(/\s+/);
    const argsText = rest.join(' ');
    if (op === 'ARG' && out.length === 0) {
      const [k, v] = argsText.split('=');
      args[k!] = v ?? '';
    } else if (op === 'FROM') {
      out.push({ from: argsText.replace(/\$\{(\w+)\}/g, (_, k: string) => args[k] ?? ''), instructions: [] });
    } else out.at(-1)?.instructions.push({ op: op!, args: argsText });
  }
  return out;
}

const dockerfile = stages(readFileSync(`${ROOT}deploy/Dockerfile`, 'utf8'));
const runtime = dockerfile.at(-1)!;
const all = (op: string) => runtime.instructions.filter((i) => i.op === op).map((i) => i.args);
const one = (op: string) => all(op).at(-1) ?? '';
const exec = (op: string) => JSON.parse(one(op)) as string[];
const imageEnv: Record<string, string> = Object.fromEntries(
  all('ENV').flatMap((a) => [...a.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
);

let child: ChildProcess | undefined;
after(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
});

test('image - multi-stage on node:20-slim, non-root, HEALTHCHECK on /healthz, SIGTERM to stop', () => {
  assert.ok(dockerfile.length >= 2, 'multi-stage');
  for (const s of dockerfile) assert.match(s.from, /^node:20-slim( AS \w+)?$/);
  assert.ok(!/^(root|0)$/.test(one('USER')) && one('USER') !== '', 'runs as a non-root user');
  assert.equal(one('STOPSIGNAL'), 'SIGTERM');
  assert.equal(one('EXPOSE'), imageEnv['SB_PORT']);
  assert.equal(imageEnv['SB_HOST'], '0.0.0.0');
  assert.equal(imageEnv['NODE_ENV'], 'production');
  const hc = one('HEALTHCHECK');
  const script = JSON.parse(hc.slice(hc.indexOf('CMD ') + 4)) as string[];
  assert.match(readFileSync(`${ROOT}${script[1]}`, 'utf8'), /\/healthz/);
  // What the runtime stage copies from the build context exists.
  for (const c of all('COPY').filter((a) => !a.startsWith('--from')))
    assert.ok(readFileSync(`${ROOT}${c.split(' ')[0]}`), `${c} is in the repository`);
});

test('image - its command runs the node as a plain process; healthcheck passes; SIGTERM drains', async () => {
  const port = await findFreePort('127.0.0.1');
  const keyspace = randomKeyspace('img');
  const env = {
    ...process.env,
    ...imageEnv,
    SB_HOST: '127.0.0.1',
    SB_PORT: String(port),
    SB_NATS_URL: TEST_NATS_URL,
    SB_CASSANDRA: TEST_CASSANDRA,
    SB_KEYSPACE: keyspace,
    SB_CLUSTER: keyspace,
    SB_JWT_SECRET: TEST_JWT_SECRET,
    SB_INTEGRATION_STORAGE: 'memory',
    SB_INTEGRATION_STREAM_MAX_MSGS: '100000',
    SB_LOG_LEVEL: 'info',
  };
  const [cmd, ...args] = [...exec('ENTRYPOINT'), ...exec('CMD'), '--workers', '1'];
  assert.equal(cmd, 'node');
  const proc = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  for (const t0 = Date.now(); !/"ready":true/.test(out); await new Promise((r) => setTimeout(r, 100))) {
    assert.ok(proc.exitCode === null, `exited before ready:\n${out}`);
    assert.ok(Date.now() - t0 < 60_000, `not ready in 60 s:\n${out}`);
  }
  const hc = one('HEALTHCHECK');
  const [hcCmd, ...hcArgs] = JSON.parse(hc.slice(hc.indexOf('CMD ') + 4)) as string[];
  assert.equal(hcCmd, 'node');
  const healthy = await new Promise<number>((resolve) =>
    execFile(process.execPath, hcArgs, { cwd: ROOT, env }, (err) => resolve(err ? 1 : 0)),
  );
  assert.equal(healthy, 0, 'the HEALTHCHECK command passes');
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.equal(ready.status, 200);
  proc.kill('SIGTERM');
  assert.equal(await exited, 0, `a clean drain:\n${out}`);
  assert.match(out, /"clean":true/, 'every worker drained within its grace period');
  const unhealthy = await new Promise<number>((resolve) =>
    execFile(process.execPath, hcArgs, { cwd: ROOT, env }, (err) => resolve(err ? 1 : 0)),
  );
  assert.equal(unhealthy, 1, 'the HEALTHCHECK fails once the node is gone');
});
