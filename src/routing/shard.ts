/**
 * Shard hashing. `shardOf(tenant, conv) = fnv1a32(utf8(tenant) ++ 0x00 ++ utf8(conv)) mod 1024`:
 * stable across versions and languages (documented in docs/ARCHITECTURE.md), so any client or
 * tool can compute which shard a conversation lives on.
 */
export const SHARD_COUNT = 1024;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
function step(h: number, byte: number): number {
  return Math.imul(h ^ byte, FNV_PRIME);
}

/**
 * 32-bit FNV-1a over the UTF-8 bytes of `text`, as an unsigned integer. The bytes are produced
 * inline (no TextEncoder allocation): this runs for every message and every rendezvous weight.
 */
export function fnv1a32(text: string): number {
  return fnvUpdate(FNV_OFFSET, text) >>> 0;
}

/** Continues an FNV-1a state over the UTF-8 bytes of `text` (a key hashed in parts, not concatenated). */
function fnvUpdate(state: number, text: string): number {
  let h = state;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      h = step(h, c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    // A lone surrogate is encoded as U+FFFD, as TextEncoder does.
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x800) {
      h = step(h, 0xc0 | (c >> 6));
    } else if (c < 0x10000) {
      h = step(h, 0xe0 | (c >> 12));
      h = step(h, 0x80 | ((c >> 6) & 0x3f));
    } else {
      h = step(h, 0xf0 | (c >> 18));
      h = step(h, 0x80 | ((c >> 12) & 0x3f));
      h = step(h, 0x80 | ((c >> 6) & 0x3f));
    }
    h = step(h, 0x80 | (c & 0x3f));
  }
  return h;
}

/**
 * The shard of `tenant` and `conv`. Hashed in parts, so the key `tenant\0conv` is never built: this
 * runs several times per message (issue #13: allocations per message).
 */
export function shardOf(tenant: string, conv: string): number {
  return (fnvUpdate(step(fnvUpdate(FNV_OFFSET, tenant), 0), conv) >>> 0) % SHARD_COUNT;
}

/** `shardOf(tenant, prefix + id)`, without building that string. */
export function shardOfPrefixed(tenant: string, prefix: string, id: string): number {
  // A prefix ending in a high surrogate pairs with a low one starting `id`: hash the joined text.
  const last = prefix.charCodeAt(prefix.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) return shardOf(tenant, `${prefix}${id}`);
  return (fnvUpdate(fnvUpdate(step(fnvUpdate(FNV_OFFSET, tenant), 0), prefix), id) >>> 0) % SHARD_COUNT;
}

// FNV alone mixes the low bits of short similar keys poorly; a murmur3 finaliser spreads them so
// rendezvous weights of "node-a|17" and "node-b|17" are independent.
function mix32(h: number): number {
  let x = h;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * Rendezvous (highest random weight) owner of `shard` among `members`: each member's weight is
 * mix32(fnv1a32(member + '|' + shard)); the highest wins, ties broken by the smaller id. Adding or
 * removing a member moves only the shards that member wins or held.
 */
export function rendezvousOwner(shard: number, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const m of members) {
    const w = mix32(fnv1a32(`${m}|${shard}`));
    if (w > bestWeight || (w === bestWeight && best !== undefined && m < best)) {
      best = m;
      bestWeight = w;
    }
  }
  return best;
}
