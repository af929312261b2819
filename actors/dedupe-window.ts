/**
 * A conversation's de-duplication window (docs/PROTOCOL.md, "Retries and de-duplication"): which of
 * its last `limit` messages a (sender, cmid) names. Held compactly, because every active conversation
 * keeps one: per message a 32-bit hash of (sender, cmid) and its seq, in a ring indexed by seq (the
 * window's messages have consecutive seqs). 2 KiB per conversation at the default 256, where a Map of
 * acks took about 87 KiB (342 B a message, measured with 2,000 conversations of 256).
 *
 * A hash only nominates: the caller confirms a candidate against the stored row (its sender and cmid),
 * so a collision costs a read, never a wrong answer.
 */
export class DedupeWindow {
  readonly limit: number;
  readonly #hashes: Int32Array;
  /** seq of each slot; 0: empty. */
  readonly #seqs: Float64Array;
  /** 1: the slot's message was loaded at activation (written by an earlier owner), not yet re-fanned. */
  readonly #inherited: Uint8Array;

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 0)
      throw new Error('dedupe window must be a non-negative integer');
    this.limit = limit;
    this.#hashes = new Int32Array(limit);
    this.#seqs = new Float64Array(limit);
    this.#inherited = new Uint8Array(limit);
  }

  /** Records the message at `seq` (the newest); the one `limit` seqs older leaves the window. */
  add(seq: number, sender: string, cmid: string, inherited = false): void {
    if (this.limit === 0) return;
    const i = seq % this.limit;
    this.#hashes[i] = hashKey(sender, cmid);
    this.#seqs[i] = seq;
    this.#inherited[i] = inherited ? 1 : 0;
  }

  /** The seqs whose (sender, cmid) hash as this one does, newest first: candidates to confirm. */
  candidates(sender: string, cmid: string): readonly number[] {
    const h = hashKey(sender, cmid);
    // Called for every message, nearly always without a match: nothing is allocated until one.
    let out: number[] | undefined;
    for (let i = 0; i < this.limit; i++) {
      if (this.#hashes[i] !== h || this.#seqs[i] === 0) continue;
      if (out === undefined) out = [];
      out.push(this.#seqs[i]!);
    }
    if (out === undefined) return NONE;
    return out.length > 1 ? out.sort((a, b) => b - a) : out;
  }

  /** Whether `seq` is in the window. */
  has(seq: number): boolean {
    return this.limit > 0 && seq > 0 && this.#seqs[seq % this.limit] === seq;
  }

  /** Whether `seq` was inherited and not yet taken; takes it (true once). */
  takeInherited(seq: number): boolean {
    if (!this.has(seq)) return false;
    const i = seq % this.limit;
    const was = this.#inherited[i] === 1;
    this.#inherited[i] = 0;
    return was;
  }

  /** Messages in the window. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.limit; i++) if (this.#seqs[i] !== 0) n++;
    return n;
  }
}

const NONE: readonly number[] = Object.freeze([]);

/** FNV-1a (32 bits) of sender, a separator no id may hold, and cmid. */
function hashKey(sender: string, cmid: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < sender.length; i++) h = Math.imul(h ^ sender.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0, 0x01000193);
  for (let i = 0; i < cmid.length; i++) h = Math.imul(h ^ cmid.charCodeAt(i), 0x01000193);
  return h | 0;
}
