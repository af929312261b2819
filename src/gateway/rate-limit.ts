/**
 * Token-bucket rate limits. A bucket holds at most `burst` tokens and refills at `ratePerS`; each
 * request takes one token, and a request that finds less than one is refused with the time until a
 * token is there. Per-connection buckets live in the socket's data; per-tenant buckets live in a
 * bounded map (one per node process: limits are per node, not cluster-wide).
 */

/** The two numbers of one bucket; a plain object so it can sit in uWS socket user data. */
export interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, epoch ms. */
  at: number;
}

export function newBucket(burst: number, now: number): Bucket {
  return { tokens: burst, at: now };
}

/**
 * Takes one token. Returns 0 when taken, else the milliseconds until one token will be available
 * (at least 1). Bursts and rates may change between calls (a tenants-file reload): the bucket is
 * clamped to the current burst.
 */
export function take(b: Bucket, now: number, ratePerS: number, burst: number): number {
  const elapsed = now - b.at;
  if (elapsed > 0) {
    b.tokens = Math.min(burst, b.tokens + (elapsed * ratePerS) / 1000);
    b.at = now;
  } else if (b.tokens > burst) {
    b.tokens = burst;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return Math.max(1, Math.ceil(((1 - b.tokens) * 1000) / ratePerS));
}

/**
 * Buckets by key (a tenant id), at most `maxEntries` of them. When full, the oldest-created bucket is
 * dropped to make room: its key starts again with a full bucket. A bucket that has refilled to full
 * carries no information, so with tenants far fewer than the bound nothing is ever lost.
 */
export class BucketMap {
  private readonly buckets = new Map<string, Bucket>();

  constructor(readonly maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries <= 0)
      throw new Error('maxEntries must be a positive integer');
  }

  take(key: string, now: number, ratePerS: number, burst: number): number {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxEntries) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      b = newBucket(burst, now);
      this.buckets.set(key, b);
    }
    return take(b, now, ratePerS, burst);
  }

  get size(): number {
    return this.buckets.size;
  }
}
