/**
 * The edge against a real broker process with a tenants file: token keys by kid (RS256, rotation,
 * algorithm confusion), expiry closing the socket, the Origin allow-list and its hot reload,
 * per-connection and per-tenant frame rate limits, API keys and operator credentials on HTTP, the HTTP
 * rate limit, and permessage-deflate not being negotiated.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { createAuthenticator, type TokenRole } from '../../src/gateway/auth.js';
import { type NatsServerHandle, startNatsServer } from '../../src/stack/nats-server.js';
import { hashApiKey } from '../../src/tenants.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { ADMIN_HEADERS, randomKeyspace, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type Frame, type UpgradeRefused } from '../harness/ws-client.js';

const auth = createAuthenticator(TEST_JWT_SECRET);
const dir = mkdtempSync(join(tmpdir(), 'sb-edge-'));
const tenantsFile = join(dir, 'tenants.yaml');
const HS_NEW = 'rotated-secret-0123456789abcdefghijklmnop';
const ACME_KEY = 'sbk_acme_business_0123456789';
const ACME_ADMIN_KEY = 'sbk_acme_admin_0123456789';
const GLOBEX_KEY = 'sbk_globex_0123456789';
const CHATTY_KEY = 'sbk_chatty_0123456789';
const OPS_KEY = 'sbk_ops_0123456789abcdef';
const JSON_SUB = 'switchboard.v1.json' as const;

const rsa = await generateKeyPair('RS256', { extractable: true });
writeFileSync(join(dir, 'rs-1.pem'), await exportSPKI(rsa.publicKey));

function tenantsYaml(acmeOrigins: string[]): string {
  return `version: 1
auth:
  keys:
    - { kid: rs-1, alg: RS256, publicKeyFile: rs-1.pem }
    - { kid: hs-new, alg: HS256, secret: ${HS_NEW} }
operatorKeys:
  - { id: ops, sha256: ${hashApiKey(OPS_KEY)} }
defaults:
  origins: []
tenants:
  acme:
    origins: [${acmeOrigins.join(', ')}]
    apiKeys:
      - { id: biz, sha256: ${hashApiKey(ACME_KEY)}, scopes: [api] }
      - { id: adm, sha256: ${hashApiKey(ACME_ADMIN_KEY)}, scopes: [api, admin] }
  globex:
    apiKeys:
      - { id: biz, sha256: ${hashApiKey(GLOBEX_KEY)} }
  slowpoke:
    rateLimits: { connectionFramesPerS: 0.2, connectionBurst: 3 }
  crowd:
    rateLimits: { tenantFramesPerS: 0.2, tenantBurst: 4 }
  chatty:
    apiKeys:
      - { id: k, sha256: ${hashApiKey(CHATTY_KEY)} }
    rateLimits: { httpRequestsPerS: 0.2, httpBurst: 3 }
`;
}

let node: BrokerProcess;
let n = 0;
const uid = (p: string) => `${p}-${process.pid}-${++n}`;

// A NATS server of our own: the JetStream reservations of every test cluster add up on the shared one.
let nats: NatsServerHandle;

before(async () => {
  writeFileSync(tenantsFile, tenantsYaml(['https://shop.acme.example']));
  nats = await startNatsServer();
  node = await startBroker({
    nodeId: 'edge-a',
    natsUrl: nats.url,
    readyTimeoutMs: 120_000,
    keyspace: randomKeyspace('edge'),
    env: {
      SB_CASSANDRA_TIMEOUT_MS: '30000',
      SB_TENANTS_FILE: tenantsFile,
      SB_TENANTS_RELOAD_DEBOUNCE_MS: '50',
    },
  });
});

after(async () => {
  await node?.stop();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const token = (tenant: string, sub: string, role: TokenRole, ttl = 600) =>
  auth.sign({ tenant, sub, role }, ttl);
const wsUrl = (role: TokenRole) => `${node.wsBase}/ws/${role}`;

function signKid(alg: string, kid: string, key: Parameters<SignJWT['sign']>[0], claims: object, ttl = 600) {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg, kid })
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
    .sign(key);
}

async function refusedStatus(p: Promise<unknown>): Promise<number> {
  try {
    const c = (await p) as { close(): Promise<void> };
    await c.close();
    return 101;
  } catch (err) {
    return (err as UpgradeRefused).status;
  }
}

async function httpGet(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${node.httpBase}${path}`, { headers });
  const text = await res.text();
  let body: { error?: { code: string; retryAfterMs?: number }; items?: Frame[] } = {};
  try {
    body = JSON.parse(text);
  } catch {
    // /metrics is text
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** A visitor of `tenant` creates conversation `conv` with one message. */
async function seedConversation(tenant: string, conv: string): Promise<void> {
  const v = await connectClient(wsUrl('visitor'), await token(tenant, 'v1', 'visitor'), JSON_SUB);
  v.send({ type: 'send', conv, cmid: 'seed', body: 'hello' });
  await v.next((f) => f.type === 'ack');
  await v.close();
}

describe('edge - tokens', () => {
  test('edge - RS256 by kid and a rotated HS256 kid open sockets; confusion and unknown kids are 401', async () => {
    const claims = { tenant: 'acme', sub: 'v-rs', role: 'visitor' };
    const rs = await connectClient(
      wsUrl('visitor'),
      await signKid('RS256', 'rs-1', rsa.privateKey, claims),
      JSON_SUB,
    );
    assert.equal(rs.welcome.user, 'v-rs');
    await rs.close();
    const hs = await connectClient(
      wsUrl('visitor'),
      await signKid('HS256', 'hs-new', new TextEncoder().encode(HS_NEW), claims),
      JSON_SUB,
    );
    assert.equal(hs.welcome.tenant, 'acme');
    await hs.close();
    const pem = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
    for (const [label, t] of [
      ['HS256 keyed with the RS public key', await signKid('HS256', 'rs-1', pem, claims)],
      ['RS256 with an HS kid', await signKid('RS256', 'hs-new', rsa.privateKey, claims)],
      ['unknown kid', await signKid('HS256', 'gone', new TextEncoder().encode(HS_NEW), claims)],
    ] as const) {
      assert.equal(await refusedStatus(connectClient(wsUrl('visitor'), t, JSON_SUB)), 401, label);
    }
  });

  test('edge - a frame after the token expired closes the socket with 4001', async () => {
    const c = await connectClient(wsUrl('visitor'), await token('acme', uid('v'), 'visitor', 2), JSON_SUB);
    c.send({ type: 'ping', ref: 'before' });
    await c.next((f) => f.type === 'pong');
    await new Promise((r) => setTimeout(r, 2100));
    c.send({ type: 'ping', ref: 'after' });
    const closed = await c.closed;
    assert.equal(closed.code, 4001);
    assert.equal(
      c.buffered().some((f) => f.ref === 'after'),
      false,
      'the late frame is not answered',
    );
  });
});

describe('edge - origins', () => {
  test('edge - a browser Origin must be in the tenant list; no Origin is allowed', async () => {
    const t = await token('acme', uid('v'), 'visitor');
    const open = (origin?: string) =>
      refusedStatus(connectClient(wsUrl('visitor'), t, JSON_SUB, origin ? { origin } : {}));
    assert.equal(await open('https://shop.acme.example'), 101);
    assert.equal(await open('HTTPS://SHOP.ACME.EXAMPLE'), 101, 'case-insensitive');
    assert.equal(await open('https://evil.example'), 403);
    assert.equal(await open('https://shop.acme.example.evil.example'), 403);
    assert.equal(await open(), 101, 'non-browser clients send no Origin');
    // An unlisted tenant gets the defaults: no browser Origin at all.
    const other = await token(uid('unlisted'), 'v1', 'visitor');
    assert.equal(
      await refusedStatus(
        connectClient(wsUrl('visitor'), other, JSON_SUB, { origin: 'https://shop.acme.example' }),
      ),
      403,
    );
  });

  test('edge - a changed tenants file applies without a restart; a broken one is refused', async () => {
    const t = await token('acme', uid('v'), 'visitor');
    const open = (origin: string) => refusedStatus(connectClient(wsUrl('visitor'), t, JSON_SUB, { origin }));
    assert.equal(await open('https://new.acme.example'), 403);
    writeFileSync(tenantsFile, tenantsYaml(['https://shop.acme.example', 'https://new.acme.example']));
    const deadline = Date.now() + 5000;
    while ((await open('https://new.acme.example')) !== 101) {
      assert.ok(Date.now() < deadline, 'the new origin was not applied within 5 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    writeFileSync(tenantsFile, 'version: 1\ntenants: [broken\n');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await open('https://new.acme.example'), 101, 'the previous configuration stays');
    assert.match(node.logs(), /tenants file refused/);
    writeFileSync(tenantsFile, tenantsYaml(['https://shop.acme.example', 'https://new.acme.example']));
  });
});

describe('edge - rate limits', () => {
  test('edge - per connection: frames beyond the burst get rate_limited with retryAfterMs', async () => {
    const c = await connectClient(wsUrl('visitor'), await token('slowpoke', uid('v'), 'visitor'), JSON_SUB);
    for (let i = 0; i < 6; i++) c.send({ type: 'ping', ref: `p${i}` });
    const answers: Frame[] = [];
    for (let i = 0; i < 6; i++) answers.push(await c.next((f) => f.ref === `p${i}`));
    assert.deepEqual(
      answers.map((f) => (f.type === 'pong' ? 'pong' : f.code)),
      ['pong', 'pong', 'pong', 'rate_limited', 'rate_limited', 'rate_limited'],
    );
    const limited = answers[3]!;
    assert.ok(
      Number(limited.retryAfterMs) > 0 && Number(limited.retryAfterMs) <= 5000,
      String(limited.retryAfterMs),
    );
    assert.match(String(limited.message), /connection/);
    // The socket stays open and another connection of the tenant has its own bucket.
    const d = await connectClient(wsUrl('visitor'), await token('slowpoke', uid('v'), 'visitor'), JSON_SUB);
    d.send({ type: 'ping', ref: 'd' });
    assert.equal((await d.next((f) => f.ref === 'd')).type, 'pong');
    await Promise.all([c.close(), d.close()]);
  });

  test('edge - per tenant: the tenant bucket is shared by all its sockets on the node', async () => {
    const a = await connectClient(wsUrl('visitor'), await token('crowd', uid('v'), 'visitor'), JSON_SUB);
    const b = await connectClient(wsUrl('visitor'), await token('crowd', uid('v'), 'visitor'), JSON_SUB);
    for (let i = 0; i < 3; i++) a.send({ type: 'ping', ref: `a${i}` });
    for (let i = 0; i < 3; i++) b.send({ type: 'ping', ref: `b${i}` });
    const answers = await Promise.all(
      ['a0', 'a1', 'a2']
        .map((r) => a.next((f) => f.ref === r))
        .concat(['b0', 'b1', 'b2'].map((r) => b.next((f) => f.ref === r))),
    );
    assert.equal(answers.filter((f) => f.type === 'pong').length, 4, JSON.stringify(answers));
    const limited = answers.filter((f) => f.code === 'rate_limited');
    assert.equal(limited.length, 2);
    assert.match(String(limited[0]!.message), /tenant/);
    // Another tenant is not affected.
    const o = await connectClient(wsUrl('visitor'), await token(uid('free'), 'v', 'visitor'), JSON_SUB);
    o.send({ type: 'ping', ref: 'o' });
    assert.equal((await o.next((f) => f.ref === 'o')).type, 'pong');
    await Promise.all([a.close(), b.close(), o.close()]);
  });

  test('edge - HTTP: requests beyond the tenant burst get 429 rate_limited with Retry-After', async () => {
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof httpGet>> | undefined;
    for (let i = 0; i < 5; i++) {
      const r = await httpGet('/api/v1/conversations/nope/messages', { 'x-api-key': CHATTY_KEY });
      statuses.push(r.status);
      if (r.status === 429) limited = r;
    }
    assert.deepEqual(statuses, [404, 404, 404, 429, 429]);
    assert.equal(limited?.body.error?.code, 'rate_limited');
    assert.ok(Number(limited?.headers.get('retry-after')) >= 1);
    assert.ok(Number(limited?.body.error?.retryAfterMs) > 0);
  });
});

describe('edge - HTTP credentials', () => {
  test('edge - API keys: missing/wrong 401, scope/kind 403, another tenant 404, own tenant 200', async () => {
    const conv = uid('c');
    await seedConversation('acme', conv);
    const path = `/api/v1/conversations/${conv}/messages`;
    assert.equal((await httpGet(path)).status, 401);
    assert.equal((await httpGet(path, { 'x-api-key': 'sbk_wrong' })).body.error?.code, 'unauthorized');
    assert.equal((await httpGet(path, { authorization: 'Bearer sbk_wrong' })).status, 401);
    const own = await httpGet(path, { 'x-api-key': ACME_KEY });
    assert.equal(own.status, 200);
    assert.equal(own.body.items?.[0]?.body, 'hello');
    assert.equal((await httpGet(path, { authorization: `Bearer ${ACME_ADMIN_KEY}` })).status, 200);
    const other = await httpGet(path, { 'x-api-key': GLOBEX_KEY });
    assert.equal(other.status, 404, 'another tenant never sees the conversation');
    assert.equal(other.body.error?.code, 'not_found');
    assert.equal(
      (await httpGet(path, { 'x-api-key': OPS_KEY })).status,
      403,
      'operator keys are not tenant keys',
    );
    // Tokens still read history as participants; another tenant's token gets 404.
    const visitor = await httpGet(path, { authorization: `Bearer ${await token('acme', 'v1', 'visitor')}` });
    assert.equal(visitor.status, 200);
    const stranger = await httpGet(path, { authorization: `Bearer ${await token('acme', 'v2', 'visitor')}` });
    assert.equal(stranger.status, 403);
    const foreign = await httpGet(path, {
      authorization: `Bearer ${await token('globex', 'v1', 'visitor')}`,
    });
    assert.equal(foreign.status, 404);
  });

  test('edge - /metrics and /admin/* need SB_ADMIN_TOKEN or an operator key', async () => {
    for (const path of ['/metrics', '/admin/shards']) {
      assert.equal((await httpGet(path)).status, 401, path);
      assert.equal((await httpGet(path, { authorization: 'Bearer not-the-token' })).status, 401, path);
      assert.equal((await httpGet(path, { 'x-api-key': ACME_ADMIN_KEY })).status, 403, `${path} tenant key`);
      assert.equal((await httpGet(path, ADMIN_HEADERS)).status, 200, `${path} admin token`);
      assert.equal((await httpGet(path, { 'x-api-key': OPS_KEY })).status, 200, `${path} operator key`);
    }
    assert.equal((await httpGet('/healthz')).status, 200, 'health stays open');
  });
});

describe('edge - compression', () => {
  test('edge - permessage-deflate offered by a client is not negotiated', async () => {
    const c = await connectClient(wsUrl('visitor'), await token('acme', uid('v'), 'visitor'), JSON_SUB, {
      perMessageDeflate: true,
    });
    assert.equal(c.ws.extensions, '', 'the ws client offered deflate; the server declined');
    await c.close();
    // The raw 101 response carries no Sec-WebSocket-Extensions header.
    const t = await token('acme', uid('v'), 'visitor');
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = request(`${node.httpBase}/ws/visitor?token=${encodeURIComponent(t)}`, {
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'sec-websocket-protocol': JSON_SUB,
          'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
        },
      });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve(res.headers);
      });
      req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    assert.equal(headers['sec-websocket-protocol'], JSON_SUB);
    assert.equal(headers['sec-websocket-extensions'], undefined);
  });
});
