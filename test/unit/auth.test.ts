import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT, UnsecuredJWT } from 'jose';
import { buildKeySet, createAuthenticator } from '../../src/gateway/auth.js';
import { loadTenantsFile } from '../../src/tenants.js';

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

// --- kid key set: RS256, rotation, JWKS, algorithm confusion ---------------------------------------

async function keySetFrom(yamlText: string, files: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sb-auth-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'tenants.yaml'), yamlText);
  try {
    return await buildKeySet(await loadTenantsFile(join(dir, 'tenants.yaml')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rsa = await generateKeyPair('RS256', { extractable: true });
const rsaPem = await exportSPKI(rsa.publicKey);
const rsa2 = await generateKeyPair('RS256', { extractable: true });
const jwk2 = { ...(await exportJWK(rsa2.publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
const HS_A = 'a'.repeat(40);
const HS_B = 'b'.repeat(40);
const claims = { tenant: 'acme', sub: 'v1', role: 'visitor' };

function signKid(alg: string, kid: string, key: Parameters<SignJWT['sign']>[0]) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg, kid })
    .setExpirationTime(nowS() + 60)
    .sign(key);
}

test('auth - RS256 tokens verify by kid (PEM and JWKS); HS keys by kid; unknown kid refused', async () => {
  const keys = await keySetFrom(
    [
      'version: 1',
      'auth:',
      '  keys:',
      `    - { kid: hs-a, alg: HS256, secret: ${HS_A} }`,
      '    - { kid: rs-1, alg: RS256, publicKeyFile: rs-1.pem }',
      '  jwksFiles: [idp.json]',
      '',
    ].join('\n'),
    { 'rs-1.pem': rsaPem, 'idp.json': JSON.stringify({ keys: [jwk2] }) },
  );
  const a = createAuthenticator(SECRET, keys);
  assert.equal((await a.verify(await signKid('RS256', 'rs-1', rsa.privateKey))).user, 'v1');
  assert.equal((await a.verify(await signKid('RS256', 'idp-1', rsa2.privateKey))).user, 'v1');
  assert.equal((await a.verify(await signKid('HS256', 'hs-a', new TextEncoder().encode(HS_A)))).user, 'v1');
  // No kid: the deployment secret, as before.
  assert.equal((await a.verify(await auth.sign(claims as never, 60))).tenant, 'acme');
  const refuse = (t: string, label: string) => assert.rejects(a.verify(t), { code: 'unauthorized' }, label);
  await refuse(await signKid('RS256', 'nope', rsa.privateKey), 'unknown kid');
  await refuse(await signKid('RS256', 'rs-1', rsa2.privateKey), 'RS256 signed by another key');
  await refuse(await signKid('RS256', 'idp-1', rsa.privateKey), 'JWKS kid, wrong private key');
  // An RS256 token without kid cannot fall back to anything.
  await refuse(
    await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256' })
      .setExpirationTime(nowS() + 60)
      .sign(rsa.privateKey),
    'RS256 without kid',
  );
});

test('auth - algorithm confusion: an HS256 token keyed with the RS public key is refused', async () => {
  const keys = await keySetFrom(
    'version: 1\nauth:\n  keys:\n    - { kid: rs-1, alg: RS256, publicKeyFile: rs-1.pem }\n  jwksFiles: [idp.json]\n',
    {
      'rs-1.pem': rsaPem,
      'idp.json': JSON.stringify({ keys: [jwk2] }),
    },
  );
  const a = createAuthenticator(SECRET, keys);
  const pemBytes = new TextEncoder().encode(rsaPem);
  for (const kid of ['rs-1', 'idp-1']) {
    await assert.rejects(a.verify(await signKid('HS256', kid, pemBytes)), { code: 'unauthorized' }, kid);
  }
  // …and with no kid, the PEM is not the deployment secret either.
  await assert.rejects(a.verify(await signRaw(claims, { key: pemBytes })), { code: 'unauthorized' });
  // alg none with a kid of a real key.
  const none = new UnsecuredJWT(claims).setExpirationTime(nowS() + 60).encode();
  const [, body] = none.split('.');
  const header = Buffer.from(JSON.stringify({ alg: 'none', kid: 'rs-1' })).toString('base64url');
  await assert.rejects(a.verify(`${header}.${body}.`), { code: 'unauthorized' }, 'none with kid');
});

test('auth - kid rotation: a reload that removes a kid ends its tokens; the new kid works', async () => {
  const yaml = (kids: [string, string][]) =>
    `version: 1\nauth:\n  keys:\n${kids.map(([k, s]) => `    - { kid: ${k}, alg: HS256, secret: ${s} }`).join('\n')}\n`;
  const a = createAuthenticator(SECRET, await keySetFrom(yaml([['k-old', HS_A]])));
  const oldToken = await signKid('HS256', 'k-old', new TextEncoder().encode(HS_A));
  const newToken = await signKid('HS256', 'k-new', new TextEncoder().encode(HS_B));
  assert.equal((await a.verify(oldToken)).user, 'v1');
  await assert.rejects(a.verify(newToken), { code: 'unauthorized' });
  a.setKeys(
    await keySetFrom(
      yaml([
        ['k-old', HS_A],
        ['k-new', HS_B],
      ]),
    ),
  );
  assert.equal((await a.verify(oldToken)).user, 'v1');
  assert.equal((await a.verify(newToken)).user, 'v1');
  a.setKeys(await keySetFrom(yaml([['k-new', HS_B]])));
  await assert.rejects(a.verify(oldToken), { code: 'unauthorized' });
  assert.equal((await a.verify(newToken)).user, 'v1');
});

test('auth - unusable key material is refused when the key set is built', async () => {
  await assert.rejects(
    keySetFrom('version: 1\nauth:\n  keys:\n    - { kid: r, alg: RS256, publicKeyFile: r.pem }\n', {
      'r.pem': '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
    }),
    /kid 'r'/,
  );
  const priv = { ...(await exportJWK(rsa.privateKey)), kid: 'p' };
  await assert.rejects(
    keySetFrom('version: 1\nauth:\n  jwksFiles: [j.json]\n', { 'j.json': JSON.stringify({ keys: [priv] }) }),
    /only RSA public keys/,
  );
});

test('auth - the perms claim carries permissions such as pii.reveal; a malformed one is unauthorized', async () => {
  const token = await auth.sign({ tenant: 't', sub: 'a1', role: 'agent', perms: ['pii.reveal'] }, 60);
  assert.deepEqual((await auth.verify(token)).perms, ['pii.reveal']);
  for (const perms of ['pii.reveal', [1], Array(33).fill('x'), ['Bad Name']]) {
    await rejectsWith(
      await signRaw({ tenant: 't', sub: 'a1', role: 'agent', perms }),
      'unauthorized',
      JSON.stringify(perms),
    );
  }
});

test('auth - an empty deployment secret refuses every token and does not take the process down', async () => {
  let unhandled: unknown;
  const onUnhandled = (err: unknown) => {
    unhandled = err;
  };
  process.on('unhandledRejection', onUnhandled);
  try {
    const auth = createAuthenticator('');
    await new Promise((r) => setImmediate(r));
    const token = await createAuthenticator('x'.repeat(40)).sign(
      { tenant: 't1', sub: 'u1', role: 'visitor' },
      60,
    );
    await assert.rejects(auth.verify(token), (err: { code?: string }) => err.code === 'unauthorized');
    assert.equal(unhandled, undefined, 'no unhandled rejection from importing the key');
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
