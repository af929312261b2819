/**
 * Admission of WebSocket upgrades (issue #14). A node restarted with 100k clients behind it gets their
 * reconnects all at once; when every attempt paid for its token check and presence join before being
 * refused, the event loop drowned, attempts queued past uWS's 10 s HTTP timeout, and after 120 s only
 * 32 % were back (BENCHMARKS.md, the run of 2026-12-03 17:31). So the gateway decides first, before
 * reading the token, with two bounds per worker process:
 *
 * - a token bucket of upgrades per second (`ratePerS`, `burst`): the pace one process can welcome at;
 * - upgrades admitted and not yet welcomed or refused (`maxPending`): when the process is slower than the
 *   bucket (a shared machine, a busy cluster), the backlog stops growing instead of timing out.
 *
 * A refused attempt costs one short HTTP answer, `503 unavailable` with `retryAfterMs`, and the delays
 * handed out are a schedule: each refusal takes the next free slot, `1000 / ratePerS` ms after the one
 * before, so a crowd of N refused clients is told to come back spread over N / ratePerS seconds instead
 * of all at once again. Clients wait what they are told (docs/PROTOCOL.md, "A minimal client", step 7).
 * The schedule reaches at most `maxRetryAfterMs` ahead; past it, refusals are told that horizon.
 */

/** Upgrades per second one worker process admits (token bucket rate). */
export const DEFAULT_UPGRADE_RATE_PER_S = 1000;
/** Upgrades one worker admits at once after a quiet spell (token bucket size). */
export const DEFAULT_UPGRADE_BURST = 200;
/**
 * Upgrades admitted by one worker and still waiting for their token check or `welcome`, at most. The
 * bound in force follows how long admitted upgrades take (UPGRADE_SLOW_MS, below). A restarted 6-worker
 * node at 100k has ~150 in flight per worker: a fixed 128 refused 10-12k attempts per drain storm, each a
 * round trip both sides paid for (99 % back in 58.0 s; 55.0-56.0 s with 256). A fixed 256, with the mixed
 * load's senders on the same 2 cores, let the presence joins behind the upgrades miss their 5 s deadline:
 * 927 sockets closed 1012 before `welcome`, against 167 with 128 (BENCHMARKS.md, twenty-second session).
 * (Such a join is now welcomed at its deadline and asked on: src/presence/presence.ts.)
 */
export const DEFAULT_UPGRADE_PENDING = 256;
/** The least the in-progress bound shrinks to while upgrades are slow. */
export const UPGRADE_MIN_PENDING = 32;
/**
 * An admitted upgrade that took longer than this to reach `welcome` (or its end) shrinks the bound by a
 * quarter, at most once per this long; each quicker one grows it by one, up to `maxPending`. One second
 * is a fifth of the presence join's deadline (5 s), past which a socket is welcomed without its
 * owner's answer.
 */
export const UPGRADE_SLOW_MS = 1000;
/** The furthest ahead a refused client is told to come back, ms. */
export const DEFAULT_UPGRADE_MAX_RETRY_AFTER_MS = 30_000;
/**
 * How long after a drain's notice its clients are told to come back at the soonest, ms: about what a
 * restart of a 6-worker node at 100k sockets takes here, from the SIGTERM to listening again: 10.4-12.6 s
 * in the twenty-first session, 7.9-9.2 s in the twenty-eighth and twenty-ninth. The clients
 * read their notice 0-5 s after it went out (the generators take that long to see 100k sockets close) and
 * add up to a quarter of jitter, so the first come back 8-10 s after the SIGTERM. At 10 s the restarted
 * node stood idle for ~3 s of every bench drain storm (twenty-ninth session). With 5 s, clients that read
 * their notice at once knocked on the closed port: 42-72k refused connects in a bench storm, and the start
 * they competed with took 16.8-18.9 s instead (BENCHMARKS.md, twenty-first session; config.ts).
 */
export const DEFAULT_DRAIN_RETRY_AFTER_MS = 8_000;
/** The soonest a refused client is told to come back, ms. */
export const UPGRADE_MIN_RETRY_AFTER_MS = 250;

export interface AdmissionOptions {
  ratePerS: number;
  burst: number;
  maxPending: number;
  maxRetryAfterMs: number;
  /** Default UPGRADE_MIN_PENDING (at most maxPending). */
  minPending?: number;
  /** Default UPGRADE_SLOW_MS. */
  slowMs?: number;
}

export interface AdmissionStats {
  admitted: number;
  /** Refused because the bucket was empty. */
  refusedRate: number;
  /** Refused because `limit` upgrades were in progress. */
  refusedPending: number;
  pending: number;
  /** The in-progress bound in force: `maxPending`, less while admitted upgrades are slow. */
  limit: number;
}

/** One worker's upgrade admission: `admit()` before anything else of an upgrade, `done()` when it ends. */
export class UpgradeAdmission {
  private tokens: number;
  private refilledAt: number;
  /** The next free slot of the retry schedule (epoch ms). */
  private nextSlotAt = 0;
  private readonly slotMs: number;
  private readonly minPending: number;
  private readonly slowMs: number;
  /** When the bound last shrank (epoch ms). */
  private shrunkAt = Number.NEGATIVE_INFINITY;
  readonly stats: AdmissionStats;

  constructor(
    private readonly o: AdmissionOptions,
    now: number,
  ) {
    this.tokens = o.burst;
    this.refilledAt = now;
    this.slotMs = 1000 / o.ratePerS;
    this.minPending = Math.min(o.maxPending, o.minPending ?? UPGRADE_MIN_PENDING);
    this.slowMs = o.slowMs ?? UPGRADE_SLOW_MS;
    this.stats = { admitted: 0, refusedRate: 0, refusedPending: 0, pending: 0, limit: o.maxPending };
  }

  /**
   * 0: admitted (the caller must call `done()` once the upgrade is welcomed, refused or aborted);
   * else refused, and the value is the `retryAfterMs` to answer with (at least UPGRADE_MIN_RETRY_AFTER_MS,
   * at most `maxRetryAfterMs`).
   */
  admit(now: number): number {
    const elapsed = now - this.refilledAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.o.burst, this.tokens + (elapsed * this.o.ratePerS) / 1000);
      this.refilledAt = now;
    }
    if (this.stats.pending >= this.stats.limit) {
      this.stats.refusedPending++;
      return this.slot(now);
    }
    if (this.tokens < 1) {
      this.stats.refusedRate++;
      return this.slot(now);
    }
    this.tokens--;
    this.stats.pending++;
    this.stats.admitted++;
    return 0;
  }

  /**
   * An upgrade admitted at `admittedAt` ended at `now` (welcomed, refused after its token check, or its
   * client went away). A slow one shrinks the in-progress bound by a quarter (once per `slowMs`: the
   * upgrades admitted before a shrink still end slowly for a while), a quick one grows it by one.
   */
  done(admittedAt: number, now: number): void {
    if (this.stats.pending > 0) this.stats.pending--;
    if (now - admittedAt > this.slowMs) {
      if (now - this.shrunkAt < this.slowMs) return;
      this.shrunkAt = now;
      this.stats.limit = Math.max(this.minPending, Math.floor((this.stats.limit * 3) / 4));
    } else if (this.stats.limit < this.o.maxPending) this.stats.limit++;
  }

  private slot(now: number): number {
    const horizon = now + this.o.maxRetryAfterMs;
    const at = Math.min(horizon, Math.max(this.nextSlotAt, now + UPGRADE_MIN_RETRY_AFTER_MS));
    this.nextSlotAt = Math.min(horizon, at + this.slotMs);
    return Math.round(at - now);
  }
}

/**
 * The `retryAfterMs` a drain tells the k-th socket of a process (0-based) before its 1012: `minMs` plus k
 * slots of the upgrade pace, at most `maxMs`. A restarted node then gets its crowd after its start and
 * spread at the pace it admits, instead of all at once while its port is still closed.
 */
export function drainRetryAfterMs(k: number, o: { minMs: number; ratePerS: number; maxMs: number }): number {
  return Math.min(o.maxMs, o.minMs + Math.floor((k * 1000) / o.ratePerS));
}
