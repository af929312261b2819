/**
 * Token verification at upgrade and on HTTP requests, through jose (never hand-rolled).
 *
 * Tokens are JWTs with `tenant`, `sub`, `role` and a required `exp`, signed HS256 or RS256. The key is
 * chosen by the token's `kid` from the key set of the tenants file (`auth.keys`, `auth.jwksFiles`);
 * a token without `kid` is checked against the deployment secret (SB_JWT_SECRET, HS256). Each key is
 * bound to one algorithm: a token whose `alg` differs from its key's (`none`, HS512, or an HS256 token
 * "signed" with an RS256 public key used as an HMAC secret) is refused.
 */
import { createSecretKey, webcrypto } from 'node:crypto';
import {
  type CryptoKey,
  createLocalJWKSet,
  type FlattenedJWSInput,
  importSPKI,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  errors as joseErrors,
  jwtVerify,
  type KeyObject,
  SignJWT,
} from 'jose';
import { SwitchboardError } from '../protocol/errors.js';
import { SUBJECT_TOKEN_PATTERN } from '../protocol/frames.js';
import type { TenantsSnapshot } from '../tenants.js';

export type TokenRole = 'visitor' | 'agent';

export interface Principal {
  tenant: string;
  user: string;
  role: TokenRole;
  /** Extra roles from the token's optional `roles` claim (agent actions are authorised by role). */
  roles?: readonly string[];
  /** Expiry, epoch ms. */
  expiresAt: number;
  /** Permissions from the token's `perms` claim, e.g. `pii.reveal` (docs/PROTOCOL.md). */
  perms?: readonly string[];
}

/** The permission that lets an agent reveal one masked PII value (`reveal` frame; every use audited). */
export const PII_REVEAL_PERMISSION = 'pii.reveal';

/** The `perms` claim: at most this many names, each a short dotted word. */
const MAX_PERMS = 32;
const PERM_PATTERN = /^[a-z][a-z0-9_.-]{0,63}$/;

/** Checks the optional `perms` claim; throws `unauthorized` when it is malformed. */
export function parsePerms(value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (
    !Array.isArray(value) ||
    value.length > MAX_PERMS ||
    !value.every((p) => typeof p === 'string' && PERM_PATTERN.test(p))
  ) {
    throw new SwitchboardError(
      'unauthorized',
      `token claim perms must be an array of at most ${MAX_PERMS} names`,
    );
  }
  return Object.freeze([...value]);
}

export interface Authenticator {
  /** Resolves the principal; rejects SwitchboardError `unauthorized` or `token_expired`. */
  verify(token: string | undefined): Promise<Principal>;
  /** Signs an HS256 token with the deployment secret, no `kid` (dev-token command and tests). */
  sign(
    claims: {
      tenant: string;
      sub: string;
      role: TokenRole;
      roles?: readonly string[];
      perms?: readonly string[];
    },
    ttlSeconds: number,
  ): Promise<string>;
  /** Replaces the `kid` key set (on a tenants-file reload; see buildKeySet). */
  setKeys(keys: KeySet): void;
}

type VerifyKey = CryptoKey | KeyObject | Uint8Array;
type Resolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<VerifyKey>;

/** Verification keys by `kid`, each bound to its algorithm, plus JWKS documents. Immutable. */
export interface KeySet {
  readonly byKid: ReadonlyMap<string, { alg: 'HS256' | 'RS256'; key: VerifyKey }>;
  readonly jwks: readonly Resolver[];
}

export const EMPTY_KEY_SET: KeySet = Object.freeze({ byKid: new Map(), jwks: [] });
const ALGORITHMS = ['HS256', 'RS256'];

/**
 * An HS256 secret as a WebCrypto key, imported once. jose verifies with WebCrypto; given a KeyObject or
 * bytes for an HMAC secret it imports a new CryptoKey on every verify (~25 µs each, issue #14: every
 * upgrade of a reconnect storm pays it).
 */
function hmacVerifyKey(secret: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey(
    'raw',
    Buffer.from(secret, 'utf8'),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['verify'],
  ) as Promise<CryptoKey>;
}

/** Imports the keys a tenants snapshot names; rejects (naming the kid or file) when one is unusable. */
export async function buildKeySet(snapshot: TenantsSnapshot): Promise<KeySet> {
  const byKid = new Map<string, { alg: 'HS256' | 'RS256'; key: VerifyKey }>();
  for (const k of snapshot.jwtKeys) {
    if (k.alg === 'HS256') {
      try {
        byKid.set(k.kid, { alg: 'HS256', key: await hmacVerifyKey(k.secret) });
      } catch (err) {
        throw new Error(`auth.keys kid '${k.kid}': not a usable HS256 secret: ${(err as Error).message}`);
      }
      continue;
    }
    try {
      // jose refuses RSA keys under 2048 bits for RS256.
      byKid.set(k.kid, { alg: 'RS256', key: await importSPKI(k.publicKeyPem, 'RS256') });
    } catch (err) {
      throw new Error(`auth.keys kid '${k.kid}': not a usable RS256 public key: ${(err as Error).message}`);
    }
  }
  const jwks: Resolver[] = [];
  for (const { file, json } of snapshot.jwks) {
    try {
      const set = json as JSONWebKeySet;
      for (const jwk of set.keys ?? []) {
        if (jwk.kty !== 'RSA' || jwk.d !== undefined) throw new Error('only RSA public keys are accepted');
        if (jwk.alg !== undefined && jwk.alg !== 'RS256') throw new Error(`key alg ${jwk.alg} is not RS256`);
      }
      jwks.push(createLocalJWKSet(set));
    } catch (err) {
      throw new Error(`auth.jwksFiles ${file}: ${(err as Error).message}`);
    }
  }
  return Object.freeze({ byKid, jwks: Object.freeze(jwks) });
}

class NoKeyError extends Error {}

export function createAuthenticator(secret: string, initialKeys: KeySet = EMPTY_KEY_SET): Authenticator {
  const defaultKey = createSecretKey(Buffer.from(secret, 'utf8'));
  const defaultVerifyKey = hmacVerifyKey(secret);
  // A secret WebCrypto refuses (an empty one) makes every verify unauthorized, never an unhandled rejection.
  defaultVerifyKey.catch(() => undefined);
  let keys = initialKeys;

  const resolveKey: Resolver = async (header, token) => {
    if (header.kid === undefined) {
      if (header.alg !== 'HS256') throw new NoKeyError('a token without kid must be HS256');
      return defaultVerifyKey;
    }
    const k = keys.byKid.get(header.kid);
    if (k) {
      // The key decides the algorithm, never the token: this is what stops algorithm confusion.
      if (k.alg !== header.alg) throw new NoKeyError(`kid ${header.kid} is an ${k.alg} key`);
      return k.key;
    }
    for (const set of keys.jwks) {
      try {
        return await set(header, token);
      } catch (err) {
        if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys)
          continue;
        throw err;
      }
    }
    throw new NoKeyError(`no key with kid ${header.kid}`);
  };

  return {
    async verify(token) {
      if (!token) throw new SwitchboardError('unauthorized', 'a bearer token is required');
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, resolveKey, {
          algorithms: ALGORITHMS,
          requiredClaims: ['exp', 'sub'],
        }));
      } catch (err) {
        if (err instanceof joseErrors.JWTExpired) {
          throw new SwitchboardError('token_expired', 'the token has expired', { cause: err });
        }
        throw new SwitchboardError('unauthorized', 'the token is invalid', { cause: err });
      }
      const { tenant, sub, role, exp } = payload;
      if (typeof tenant !== 'string' || !SUBJECT_TOKEN_PATTERN.test(tenant)) {
        throw new SwitchboardError(
          'unauthorized',
          'token claim tenant must be 1-64 characters of A-Z a-z 0-9 _ -',
        );
      }
      if (typeof sub !== 'string' || !SUBJECT_TOKEN_PATTERN.test(sub)) {
        throw new SwitchboardError(
          'unauthorized',
          'token claim sub must be 1-64 characters of A-Z a-z 0-9 _ -',
        );
      }
      if (role !== 'visitor' && role !== 'agent') {
        throw new SwitchboardError('unauthorized', "token claim role must be 'visitor' or 'agent'");
      }
      const roles = payload['roles'];
      if (
        roles !== undefined &&
        (!Array.isArray(roles) ||
          roles.length > 16 ||
          !roles.every((r) => typeof r === 'string' && SUBJECT_TOKEN_PATTERN.test(r)))
      ) {
        throw new SwitchboardError(
          'unauthorized',
          'token claim roles must be a list of at most 16 role names',
        );
      }
      const perms = parsePerms(payload['perms']);
      return {
        tenant,
        user: sub,
        role,
        ...(roles === undefined ? {} : { roles: roles as string[] }),
        expiresAt: (exp as number) * 1000,
        ...(perms.length > 0 ? { perms } : {}),
      };
    },
    async sign(claims, ttlSeconds) {
      return new SignJWT({
        tenant: claims.tenant,
        role: claims.role,
        ...(claims.roles ? { roles: [...claims.roles] } : {}),
        ...(claims.perms ? { perms: [...claims.perms] } : {}),
      })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(claims.sub)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
        .sign(defaultKey);
    },
    setKeys(next) {
      keys = next;
    },
  };
}
