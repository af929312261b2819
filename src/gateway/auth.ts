/**
 * Token verification at upgrade and on HTTP requests, through jose (never hand-rolled).
 * Tokens are HS256 JWTs with `tenant`, `sub`, `role` and a required `exp`; `alg: none` and any
 * other algorithm are refused because only HS256 is accepted.
 */
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { SwitchboardError } from '../protocol/errors.js';
import { SUBJECT_TOKEN_PATTERN } from '../protocol/frames.js';

export type TokenRole = 'visitor' | 'agent';

export interface Principal {
  tenant: string;
  user: string;
  role: TokenRole;
  /** Extra roles from the token's optional `roles` claim (agent actions are authorised by role). */
  roles?: readonly string[];
  /** Expiry, epoch ms. */
  expiresAt: number;
}

export interface Authenticator {
  /** Resolves the principal; rejects SwitchboardError `unauthorized` or `token_expired`. */
  verify(token: string | undefined): Promise<Principal>;
  /** Signs a token (dev-token command and tests). */
  sign(
    claims: { tenant: string; sub: string; role: TokenRole; roles?: readonly string[] },
    ttlSeconds: number,
  ): Promise<string>;
}

export function createAuthenticator(secret: string): Authenticator {
  const key = new TextEncoder().encode(secret);
  return {
    async verify(token) {
      if (!token) throw new SwitchboardError('unauthorized', 'a bearer token is required');
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
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
      return {
        tenant,
        user: sub,
        role,
        ...(roles === undefined ? {} : { roles: roles as string[] }),
        expiresAt: (exp as number) * 1000,
      };
    },
    async sign(claims, ttlSeconds) {
      return new SignJWT({
        tenant: claims.tenant,
        role: claims.role,
        ...(claims.roles ? { roles: [...claims.roles] } : {}),
      })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(claims.sub)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
        .sign(key);
    },
  };
}
