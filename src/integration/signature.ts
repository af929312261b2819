/**
 * Webhook signatures (docs/INTEGRATION.md, "Verifying a webhook"): HMAC-SHA256 with the endpoint's
 * secret over `<timestamp>.<raw body>`, sent as `X-Switchboard-Signature: t=<unix seconds>,v1=<hex>`.
 * Binding the timestamp into the MAC lets a receiver refuse replays older than its tolerance.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-switchboard-signature';
export const EVENT_ID_HEADER = 'x-switchboard-event-id';
export const EVENT_TYPE_HEADER = 'x-switchboard-event-type';
export const ATTEMPT_HEADER = 'x-switchboard-attempt';
export const DEFAULT_SIGNATURE_TOLERANCE_S = 300;

export function signPayload(secret: string, timestampS: number, body: string | Uint8Array): string {
  const mac = createHmac('sha256', secret).update(`${timestampS}.`).update(body).digest('hex');
  return `t=${timestampS},v1=${mac}`;
}

/**
 * True when `header` carries a v1 signature of `body` by `secret` whose timestamp is within `toleranceS`
 * of `nowS`. Compares in constant time.
 */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string | Uint8Array,
  nowS = Math.floor(Date.now() / 1000),
  toleranceS = DEFAULT_SIGNATURE_TOLERANCE_S,
): boolean {
  if (!header) return false;
  const parts = new Map(
    header.split(',').map((kv) => {
      const at = kv.indexOf('=');
      return [kv.slice(0, at).trim(), kv.slice(at + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || !v1 || !/^[0-9a-f]{64}$/.test(v1)) return false;
  if (Math.abs(nowS - t) > toleranceS) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}
