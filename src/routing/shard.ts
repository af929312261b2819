/**
 * Shard hashing. `shardOf(tenant, conv) = fnv1a32(utf8(tenant) ++ 0x00 ++ utf8(conv)) mod 1024`:
 * stable across versions and languages (documented in docs/ARCHITECTURE.md), so any client or
 * tool can compute which shard a conversation lives on.
 */
export const SHARD_COUNT = 1024;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const encoder = new TextEncoder();

/** 32-bit FNV-1a over the UTF-8 bytes of `text`, as an unsigned integer. */
export function fnv1a32(text: string): number {
  let h = FNV_OFFSET;
  for (const byte of encoder.encode(text)) {
    h ^= byte;
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

export function shardOf(tenant: string, conv: string): number {
  return fnv1a32(`${tenant}\u0000${conv}`) % SHARD_COUNT;
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
