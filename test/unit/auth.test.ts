import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { type JWTPayload, SignJWT, UnsecuredJWT } from 'jose';
import { createAuthenticator } from '../../src/gateway/auth.js';

const SECRET = 'unit-test-secret-0123456789abcdef-xyz';
const KEY = new TextEncoder().encode(SECRET);
const auth = createAuthenticator(SECRET);
const nowS = (): number => Math.floor(Date.now() / 1000);

/** Signs `claims` with jose directly, so tests can build tokens the authenticator would never sign. */
function signRaw(claims: JWTPayload, opts: { alg?: string; exp?: number | null; key?: Uint8Array } = {}) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256' }).setIssuedAt();
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? nowS() + 60);
  return jwt.sign(opts.key ?? KEY);
}

async function rejectsWith(token: string | undefined, code: string, label: string): Promise<void> {
  await assert.rejects(auth.verify(token), { name: 'SwitchboardError', code }, label);
}

test('auth - a signed token verifies to its principal', async () => {
  const before = nowS();
  const token = await auth.sign({ tenant: 'acme', sub: 'visitor-1', role: 'visitor' }, 300);
  const p = await auth.verify(token);
  assert.equal(p.tenant, 'acme');
  assert.equal(p.user, 'visitor-1');
  assert.equal(p.role, 'visitor');
  assert.ok(p.expiresAt >= (before + 300) * 1000 && p.expiresAt <= (nowS() + 300) * 1000, `${p.expiresAt}`);
  assert.equal(p.expiresAt % 1000, 0, 'expiresAt is in ms');
});

test('auth - agent tokens and raw HS256 tokens with the same claims verify', async () => {
  const token = await signRaw({ tenant: 't_2', sub: 'agent-7', role: 'agent' });
  assert.deepEqual(
    { ...(await auth.verify(token)), expiresAt: 0 },
    { tenant: 't_2', user: 'agent-7', role: 'agent', expiresAt: 0 },
  );
});

test('auth - an expired token is token_expired', async () => {
  await rejectsWith(
    await auth.sign({ tenant: 'acme', sub: 'v1', role: 'visitor' }, -10),
    'token_expired',
    'sign',
  );
  await rejectsWith(
    await signRaw({ tenant: 'acme', sub: 'v1', role: 'visitor' }, { exp: nowS() - 1 }),
    'token_expired',
    'raw',
  );
});

test('auth - a missing or malformed token is unauthorized', async () => {
  for (const token of [undefined, '', 'not-a-jwt', 'a.b.c']) {
    await rejectsWith(token, 'unauthorized', String(token));
  }
});

test('auth - a token signed with another secret is unauthorized', async () => {
  const other = createAuthenticator('another-secret-0123456789abcdef-xyz');
  await rejectsWith(
    await other.sign({ tenant: 'acme', sub: 'v1', role: 'visitor' }, 60),
    'unauthorized',
    'key',
  );
});

test('auth - alg none is unauthorized', async () => {
  const token = new UnsecuredJWT({ tenant: 'acme', sub: 'v1', role: 'agent' })
    .setExpirationTime(nowS() + 60)
    .encode();
  await rejectsWith(token, 'unauthorized', 'alg none');
  // The same with a forged signature segment appended.
  await rejectsWith(`${token}c2ln`, 'unauthorized', 'alg none + signature');
});

test('auth - an HS512 token signed with the right secret is unauthorized', async () => {
  const token = await signRaw({ tenant: 'acme', sub: 'v1', role: 'visitor' }, { alg: 'HS512' });
  await rejectsWith(token, 'unauthorized', 'HS512');
});

test('auth - a token without exp is unauthorized', async () => {
  await rejectsWith(
    await signRaw({ tenant: 'acme', sub: 'v1', role: 'visitor' }, { exp: null }),
    'unauthorized',
    'no exp',
  );
});

test('auth - bad claims are unauthorized', async () => {
  const cases: Array<[string, JWTPayload]> = [
    ['role admin', { tenant: 'acme', sub: 'v1', role: 'admin' }],
    ['role missing', { tenant: 'acme', sub: 'v1' }],
    ['tenant with a dot', { tenant: 'acme.corp', sub: 'v1', role: 'visitor' }],
    ['tenant with a wildcard', { tenant: 'acme*', sub: 'v1', role: 'visitor' }],
    ['tenant missing', { sub: 'v1', role: 'visitor' }],
    ['tenant not a string', { tenant: 7, sub: 'v1', role: 'visitor' }],
    ['sub with a dot', { tenant: 'acme', sub: 'v.1', role: 'visitor' }],
    ['sub missing', { tenant: 'acme', role: 'visitor' }],
    ['sub too long', { tenant: 'acme', sub: 'v'.repeat(65), role: 'visitor' }],
  ];
  for (const [label, claims] of cases) await rejectsWith(await signRaw(claims), 'unauthorized', label);
});
