/**
 * Context look-ups: when an agent opens a conversation, the broker asks each of the tenant's context kinds
 * (orders, shipments, tickets...) on `sb.biz.<tenant>.ctx.<kind>` by NATS request-reply, all in parallel
 * under one deadline, and merges what answered in time; what did not is named with a reason. Answers are
 * cached per (tenant, conversation, kind) for the tenant's TTL in a bounded LRU. A breaker per
 * (tenant, kind) stops asking a kind that keeps failing, so a dead system costs nothing instead of the
 * whole deadline each time.
 */
import { type BoundedCache, createCache } from '../cache.js';
import type { ClusterNames } from '../cluster/names.js';
import type { Transport } from '../cluster/transport.js';
import { CircuitBreaker } from './breaker.js';
import { decodeEventPayload } from './event-codec.js';
import type { IntegrationSource } from './settings.js';

export const MAX_CONTEXT_REPLY_BYTES = 64 * 1024;
const MAX_BREAKERS = 10_000;

export type MissingReason = 'timeout' | 'unavailable' | 'circuit_open' | 'error';

export interface ContextResult {
  conv: string;
  /** kind -> the business system's answer. */
  items: Record<string, unknown>;
  /** Kinds with no answer in time, and why. */
  missing: Array<{ kind: string; reason: MissingReason; detail?: string }>;
  /** Kinds served from the cache. */
  cached: string[];
  tookMs: number;
}

export interface ContextOptions {
  cacheEntries: number;
  breakerFailures: number;
  breakerOpenMs: number;
}

export interface ContextStats {
  lookups: number;
  asked: number;
  answered: number;
  missing: number;
  cacheHits: number;
  cacheEntries: number;
}

export class ContextLookup {
  private readonly cache: BoundedCache<string, { data: unknown }>;
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly counters = { lookups: 0, asked: 0, answered: 0, missing: 0, cacheHits: 0 };

  constructor(
    private readonly transport: Transport,
    private readonly names: ClusterNames,
    private readonly source: IntegrationSource,
    private readonly opts: ContextOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.cache = createCache({ max: opts.cacheEntries, ttlMs: 0 });
  }

  stats(): ContextStats {
    return { ...this.counters, cacheEntries: this.cache.size };
  }

  /**
   * Asks every configured kind for `conv`; resolves within the tenant's deadline (plus scheduling) with
   * what answered. Never rejects for a business system's failure: that kind is listed in `missing`.
   */
  async lookup(
    tenant: string,
    conv: string,
    who: { visitor: string; agent: string | null },
    opts: { fresh?: boolean } = {},
  ): Promise<ContextResult> {
    const started = this.now();
    const settings = this.source.tenant(tenant).context;
    this.counters.lookups++;
    const result: ContextResult = { conv, items: {}, missing: [], cached: [], tookMs: 0 };
    const payload = new TextEncoder().encode(
      JSON.stringify({ tenant, conv, visitor: who.visitor, agent: who.agent }),
    );
    await Promise.all(
      settings.kinds.map(async (kind) => {
        const key = `${tenant}\u0000${conv}\u0000${kind}`;
        const hit = opts.fresh ? undefined : this.cache.get(key);
        if (hit) {
          this.counters.cacheHits++;
          result.items[kind] = hit.data;
          result.cached.push(kind);
          return;
        }
        const breaker = this.breaker(tenant, kind);
        if (!breaker.allow(this.now())) {
          result.missing.push({ kind, reason: 'circuit_open' });
          return;
        }
        this.counters.asked++;
        try {
          const reply = await this.transport.request(
            this.names.bizContextSubject(tenant, kind),
            payload,
            Math.max(1, settings.timeoutMs - (this.now() - started)),
          );
          const data = decodeEventPayload(reply, MAX_CONTEXT_REPLY_BYTES);
          if (typeof data['error'] === 'string') {
            breaker.failure(this.now());
            result.missing.push({ kind, reason: 'error', detail: data['error'].slice(0, 200) });
            return;
          }
          breaker.success();
          this.counters.answered++;
          result.items[kind] = data;
          this.cache.set(key, { data }, settings.ttlMs);
        } catch (err) {
          breaker.failure(this.now());
          const code = (err as { code?: string }).code;
          const reason: MissingReason =
            code === 'timeout' ? 'timeout' : code === 'unavailable' ? 'unavailable' : 'error';
          result.missing.push({
            kind,
            reason,
            ...(reason === 'error' ? { detail: String((err as Error).message).slice(0, 200) } : {}),
          });
        }
      }),
    );
    this.counters.missing += result.missing.length;
    result.missing.sort((a, b) => a.kind.localeCompare(b.kind));
    result.tookMs = this.now() - started;
    return result;
  }

  private breaker(tenant: string, kind: string): CircuitBreaker {
    const key = `${tenant}\u0000${kind}`;
    let b = this.breakers.get(key);
    if (!b) {
      if (this.breakers.size >= MAX_BREAKERS) this.breakers.delete(this.breakers.keys().next().value!);
      b = new CircuitBreaker({
        failureThreshold: this.opts.breakerFailures,
        openMs: this.opts.breakerOpenMs,
      });
      this.breakers.set(key, b);
    }
    return b;
  }
}
