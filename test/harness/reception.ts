/**
 * Helpers of the support-desk tests (test/integration/reception-*.test.ts): sockets with tokens, request
 * frames answered by `done`, a tenants file the test rewrites (the brokers hot-reload it), and the
 * example bot (examples/bot.ts) as a process.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAuthenticator, type TokenRole } from '../../src/gateway/auth.js';
import type { BrokerProcess } from './broker.js';
import { type BusinessSystemProcess, startExample } from './business-system.js';
import { TEST_JWT_SECRET, TEST_NATS_URL } from './env.js';
import { connectClient, type Frame, type TestClient } from './ws-client.js';

const auth = createAuthenticator(TEST_JWT_SECRET);
let seq = 0;
export const uid = (p: string) => `${p}-${process.pid}-${++seq}`;

export async function client(
  node: BrokerProcess,
  tenant: string,
  user: string,
  role: TokenRole,
): Promise<TestClient> {
  const token = await auth.sign({ tenant, sub: user, role }, 600);
  const url = `${node.wsBase}/ws/${role}`;
  // One retry: a rare upgrade closes 1006 before welcome (a known, open issue of the gateway).
  return connectClient(url, token, 'switchboard.v1.json').catch(() =>
    connectClient(url, token, 'switchboard.v1.json'),
  );
}

export function agentToken(tenant: string, user: string): Promise<string> {
  return auth.sign({ tenant, sub: user, role: 'agent' }, 600);
}

/** Sends a request frame with a ref; resolves with its `done`, rejects with the error's code. */
export async function request(c: TestClient, frame: Record<string, unknown>): Promise<Frame> {
  const ref = uid('r');
  c.send({ ...frame, ref });
  const f = await c.next((x) => (x.type === 'done' || x.type === 'error') && x.ref === ref);
  if (f.type === 'error') throw Object.assign(new Error(String(f.message)), { code: f.code });
  return f;
}

/** A visitor's message; resolves with its ack (rejects with the error code). */
export async function say(v: TestClient, conv: string, body: string): Promise<Frame> {
  const cmid = uid('m');
  v.send({ type: 'send', conv, cmid, body });
  const f = await v.next(
    (x) => (x.type === 'ack' && x.cmid === cmid) || (x.type === 'error' && x.ref === cmid),
  );
  if (f.type === 'error') throw Object.assign(new Error(String(f.message)), { code: f.code });
  return f;
}

export const frameOf = (type: string, conv: string) => (f: Frame) => f.type === type && f.conv === conv;

/** A tenants file in a directory of its own, replaced atomically (rename) on each write. */
export function tenantsFile(): { path: string; write(yaml: string): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sb-desk-'));
  const path = join(dir, 'tenants.yaml');
  return {
    path,
    write(yaml: string) {
      const tmp = join(dir, `.tenants-${++seq}.yaml`);
      writeFileSync(tmp, yaml);
      renameSync(tmp, path);
    },
  };
}

export type ExampleProcess = BusinessSystemProcess;

const BOT = fileURLToPath(new URL('../../examples/bot.js', import.meta.url));

/** Runs examples/bot.ts for `tenant` in cluster `cluster`; ready when it prints {"ready":true}. */
export function startExampleBot(
  cluster: string,
  tenant: string,
  args: string[] = [],
): Promise<ExampleProcess> {
  return startExample(BOT, 'example bot', [
    '--nats',
    TEST_NATS_URL,
    '--cluster',
    cluster,
    '--tenant',
    tenant,
    ...args,
  ]);
}
