/**
 * Bounded in-memory caches: the one module importing `lru-cache`. A cache holds at most `max` entries
 * (least recently used evicted first); entries expire `ttlMs` after they were set (0 = never).
 */
import { LRUCache } from 'lru-cache';

export interface BoundedCache<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V, ttlMs?: number): void;
  delete(key: K): void;
  clear(): void;
  readonly size: number;
}

export function createCache<K extends {}, V extends {}>(opts: {
  max: number;
  ttlMs: number;
}): BoundedCache<K, V> {
  if (!Number.isInteger(opts.max) || opts.max <= 0) throw new Error('cache max must be a positive integer');
  const lru = new LRUCache<K, V>({ max: opts.max, ...(opts.ttlMs > 0 ? { ttl: opts.ttlMs } : {}) });
  return {
    get: (key) => lru.get(key),
    set: (key, value, ttlMs) => {
      lru.set(key, value, ttlMs === undefined ? undefined : { ttl: ttlMs });
    },
    delete: (key) => {
      lru.delete(key);
    },
    clear: () => lru.clear(),
    get size() {
      return lru.size;
    },
  };
}
