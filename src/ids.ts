/**
 * Message ids: ULIDs (ulidx), monotonic within a process so ids sort in the order they were made.
 * ulidx's default randomness asks the OS for one byte per character (16 calls per id, a sixth of a
 * broker's CPU under load); ours draws from a pooled buffer of crypto-random bytes instead. Ids are
 * unique, not secret, so pooling is fine.
 */
import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulidx';

const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let at = POOL_BYTES;

/** A number in [0, 1) from pooled crypto-random bytes (the PRNG shape ulidx expects). */
function pooledRandom(): number {
  if (at >= POOL_BYTES) {
    randomFillSync(pool);
    at = 0;
  }
  // ulidx maps the value onto 32 symbols; 1/256 resolution is what its own default gives too.
  return pool[at++]! / 256;
}

/** A new ULID, e.g. 01JD8X3Q4ZK6V7R2M9N0P1Q2R3. */
export const newId: () => string = monotonicFactory(pooledRandom);
