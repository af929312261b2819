/**
 * Shared set-up of the support-desk tests (issue #17, test/integration/desk-*.test.ts): one
 * in-process node on the test NATS and Cassandra, a tenants file whose `defaults.desk` holds small
 * bounds (so each is reached in a few frames), one listed tenant with API keys of each scope, and
 * helpers for the frames and routes of docs/PROTOCOL.md "Support desk" and docs/openapi.yaml.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthenticator, type TokenRole } from '../../src/gateway/auth.js';
import { dropKeyspace } from '../../src/store/cassandra-store.js';
import { hashApiKey } from '../../src/tenants.js';
import { type InProcessNode, startInProcessNode } from './broker.js';
import { randomKeyspace, TEST_CASSANDRA, TEST_JWT_SECRET } from './env.js';
import { connectClient, type Frame, type TestClient } from './ws-client.js';

export const DESK_TENANT = 'desk';
export const API_KEY = 'sbk_desk_api_0123456789abcdef';
export const ADMIN_KEY = 'sbk_desk_admin_0123456789abcdef';
export const AUDIT_KEY = 'sbk_desk_audit_0123456789abcdef';

/** The bounds every tenant of these tests gets (defaults.desk). */
export const DESK_LIMITS = {
  recallWindowS: 2,
  maxCannedPerTenant: 3,
  maxCannedPerAgent: 2,
  maxLabelsPerConversation: 3,
  maxLabelChars: 8,
  maxEditChars: 20,
  maxEditsPerMessage: 2,
} as const;

export interface DeskEnv {
  node: InProcessNode;
  /** The test's keyspace, also its cluster name (clusterNames(keyspace) names its subjects). */
  keyspace: string;
  uid(prefix: string): string;
  client(tenant: string, user: string, role: TokenRole): Promise<TestClient>;
  /** Sends a frame with a ref; resolves its answer (`done` or `type`), rejects an `error` with its code. */
  request(c: TestClient, frame: Record<string, unknown>, type?: string): Promise<Frame>;
  /** Sends a frame with a cmid; resolves its `ack`, rejects an `error` with its code. */
  acked(c: TestClient, frame: Record<string, unknown>): Promise<Frame>;
  /** An online agent and a visitor whose new conversation (first message sent) is assigned to it. */
  pair(tenant: string, opts?: { agent?: string; visitor?: string }): Promise<Pair>;
  http(method: string, path: string, key: string | undefined, body?: unknown): Promise<HttpAnswer>;
  /**
   * Stops the node; first closes what a failed test left registered with closeAtStop (outEvents' NATS
   * connection), so the file's process can exit. Sockets end with the node.
   */
  stop(): Promise<void>;
  /** Registers something to close at stop() (outEvents does). */
  closeAtStop(close: () => Promise<void>): () => void;
}

export interface Pair {
  conv: string;
  agent: TestClient;
  visitor: TestClient;
  agentId: string;
  visitorId: string;
}

export interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
}

export async function startDeskEnv(name: string): Promise<DeskEnv> {
  const auth = createAuthenticator(TEST_JWT_SECRET);
  const keyspace = randomKeyspace(name);
  const dir = mkdtempSync(join(tmpdir(), `sb-${name}-`));
  const tenantsFile = join(dir, 'tenants.yaml');
  const limits = Object.entries(DESK_LIMITS)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  writeFileSync(
    tenantsFile,
    [
      'version: 1',
      'defaults:',
      '  integration: { outEvents: ["*"] }',
      `  desk: { ${limits} }`,
      'tenants:',
      `  ${DESK_TENANT}:`,
      '    integration: { context: { kinds: [order], timeoutMs: 2000 } }',
      '    apiKeys:',
      `      - { id: shop, sha256: ${hashApiKey(API_KEY)}, scopes: [api] }`,
      `      - { id: ops, sha256: ${hashApiKey(ADMIN_KEY)}, scopes: [api, admin] }`,
      `      - { id: auditor, sha256: ${hashApiKey(AUDIT_KEY)}, scopes: [audit] }`,
      '',
    ].join('\n'),
  );
  const node = await startInProcessNode({
    nodeId: `${name}-a`,
    keyspace,
    tenantsFile,
    chat: { agentGraceMs: 1500, agentPresenceMs: 500 },
  });
  let seq = 0;
  const uid = (p: string) => `${p}-${process.pid}-${++seq}`;
  // What a test opened: closed at stop() when a failed assertion left it open. A NATS connection left
  // open keeps the test file's process alive, and the whole run waited on it until CI's timeout.
  const open = new Set<() => Promise<void>>();
  function closeAtStop(close: () => Promise<void>): () => void {
    open.add(close);
    return () => open.delete(close);
  }

  async function client(tenant: string, user: string, role: TokenRole): Promise<TestClient> {
    const token = await auth.sign({ tenant, sub: user, role }, 600);
    const url = `${node.wsBase}/ws/${role}`;
    // One retry: a rare upgrade closes 1006 before welcome (a known, open issue of the gateway).
    return connectClient(url, token, 'switchboard.v1.json').catch(() =>
      connectClient(url, token, 'switchboard.v1.json'),
    );
  }

  async function request(c: TestClient, frame: Record<string, unknown>, type = 'done'): Promise<Frame> {
    const ref = uid('r');
    c.send({ ...frame, ref });
    const f = await c.next((x) => (x.type === type || x.type === 'error') && x.ref === ref);
    if (f.type === 'error') throw Object.assign(new Error(String(f.message)), { code: f.code });
    return f;
  }

  async function acked(c: TestClient, frame: Record<string, unknown>): Promise<Frame> {
    const cmid = String(frame['cmid']);
    c.send(frame);
    const f = await c.next(
      (x) => (x.type === 'ack' && x.cmid === cmid) || (x.type === 'error' && x.ref === cmid),
    );
    if (f.type === 'error') throw Object.assign(new Error(String(f.message)), { code: f.code });
    return f;
  }

  async function pair(tenant: string, opts: { agent?: string; visitor?: string } = {}): Promise<Pair> {
    const agentId = opts.agent ?? uid('ag');
    const visitorId = opts.visitor ?? uid('v');
    const agent = await client(tenant, agentId, 'agent');
    await request(agent, { type: 'status', status: 'online', capacity: 5 });
    const visitor = await client(tenant, visitorId, 'visitor');
    const conv = uid('c');
    await acked(visitor, { type: 'send', conv, cmid: `${conv}-hello`, body: 'hello, I need help' });
    await agent.next((f) => f.type === 'assigned' && f.conv === conv);
    await agent.next((f) => f.type === 'msg' && f.conv === conv && f.seq === 1);
    return { conv, agent, visitor, agentId, visitorId };
  }

  async function http(method: string, path: string, key: string | undefined, body?: unknown) {
    const headers: Record<string, string> = {};
    if (key !== undefined) headers['authorization'] = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${node.httpBase}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  }

  return {
    node,
    keyspace,
    uid,
    client,
    request,
    acked,
    pair,
    http,
    closeAtStop,
    async stop() {
      await Promise.allSettled([...open].map((close) => close()));
      open.clear();
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
      await dropKeyspace({ contactPoints: [TEST_CASSANDRA], localDataCenter: 'datacenter1', keyspace }).catch(
        () => {},
      );
    },
  };
}

/** Waits `ms` and returns the frames of `c` matching `match` that arrived meanwhile (without taking them). */
export async function quietFor(c: TestClient, ms: number, match: (f: Frame) => boolean): Promise<Frame[]> {
  await new Promise((r) => setTimeout(r, ms));
  return c.buffered().filter(match);
}

/** Collects the out events of `tenant` (sb.out.<tenant>.*) until stop(). */
export async function outEvents(env: DeskEnv, tenant: string) {
  const { clusterNames } = await import('../../src/cluster/names.js');
  const { connectTransport } = await import('../../src/cluster/transport.js');
  const { TEST_NATS_URL } = await import('./env.js');
  const nats = await connectTransport([TEST_NATS_URL], 'desk-test-events');
  const got: Record<string, unknown>[] = [];
  const sub = nats.subscribe(clusterNames(env.keyspace).outSubject(tenant, '*'), (m) => {
    got.push(JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>);
  });
  await nats.flush();
  const forget = env.closeAtStop(() => nats.close());
  return {
    got,
    async wait(match: (e: Record<string, unknown>) => boolean, count = 1) {
      for (let i = 0; i < 200; i++) {
        const hit = got.filter(match);
        if (hit.length >= count) return hit;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`no matching event; got ${JSON.stringify(got.map((e) => e['type']))}`);
    },
    async stop() {
      forget();
      sub.unsubscribe();
      await nats.close();
    },
  };
}
