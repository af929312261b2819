// Raw deflate (RFC 1951) of short texts against a preset dictionary, without priming zlib each time.
//
// Why: zlib's deflateSetDictionary hashes every byte of the dictionary into its match tables, and
// Node's zlib does that again on every reset. With the 17 KB dictionary of body_enc 1 that priming
// was ~30 µs of a ~35 µs compress: the largest single cost of a message on the pool thread (issue #13).
// Here the dictionary's match index is built once per dictionary and process, so a text pays only for
// its own bytes.
//
// What it writes: one final block with the fixed Huffman codes (BTYPE 01), literals and matches
// found by a hash-chain search over the dictionary and the text itself, each match taken only when
// its codes are shorter than the literals it replaces. Any deflate inflater given the same
// dictionary reads it, zlib's included, so the stored format (body_enc 1) does not change. For short
// chat texts zlib also picks fixed codes; longer texts, where dynamic codes pay, stay with zlib
// (compression.ts decides by length), and compression.ts inflates every result before it is used.

/** Longest UTF-8 input this encoder takes; longer texts go to zlib (dynamic codes pay there). */
export const DICT_DEFLATE_MAX_INPUT = 512;

const WINDOW = 32_768;
const MIN_MATCH = 3;
const MAX_MATCH = 258;
const HASH_BITS = 15;
const HASH_SIZE = 1 << HASH_BITS;
const HASH_MASK = HASH_SIZE - 1;
/** Candidates examined per position, at most (zlib's level 6 examines 128). */
const MAX_CHAIN = 128;
/** A match this long ends the search (zlib's level 6: 128). */
const NICE_MATCH = 128;
/** Once a match this long is found, a quarter of the remaining candidates are examined (zlib: 8). */
const GOOD_MATCH = 8;
/** A match this long is taken without trying the next position (zlib's max_lazy at level 6: 16). */
const MAX_LAZY = 16;

const LENGTH_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
  227, 258,
];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
  6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA = [
  0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
];

function reverseBits(code: number, bits: number): number {
  let r = 0;
  for (let i = 0; i < bits; i++) r |= ((code >> i) & 1) << (bits - 1 - i);
  return r;
}

// The fixed literal/length code (RFC 1951 3.2.6), bit-reversed for an LSB-first bit writer.
const LIT_CODE = new Uint16Array(288);
const LIT_BITS = new Uint8Array(288);
for (let s = 0; s < 288; s++) {
  let code: number;
  let bits: number;
  if (s < 144) [code, bits] = [0x30 + s, 8];
  else if (s < 256) [code, bits] = [0x190 + s - 144, 9];
  else if (s < 280) [code, bits] = [s - 256, 7];
  else [code, bits] = [0xc0 + s - 280, 8];
  LIT_CODE[s] = reverseBits(code, bits);
  LIT_BITS[s] = bits;
}
const DIST_CODE = Uint8Array.from({ length: 30 }, (_, d) => reverseBits(d, 5));

/** For each match length 3..258: its length code index (0..28). */
const LENGTH_INDEX = new Uint8Array(MAX_MATCH + 1);
for (let i = 0; i < LENGTH_BASE.length; i++) {
  const next = i + 1 < LENGTH_BASE.length ? (LENGTH_BASE[i + 1] as number) : MAX_MATCH + 1;
  for (let len = LENGTH_BASE[i] as number; len < next && len <= MAX_MATCH; len++) LENGTH_INDEX[len] = i;
}

function distIndex(dist: number): number {
  let lo = 0;
  let hi = DIST_BASE.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((DIST_BASE[mid] as number) <= dist) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Bits a match of `len` at `dist` costs with the fixed codes. */
function matchBits(len: number, dist: number): number {
  const li = LENGTH_INDEX[len] as number;
  return (
    (LIT_BITS[257 + li] as number) +
    (LENGTH_EXTRA[li] as number) +
    5 +
    (DIST_EXTRA[distIndex(dist)] as number)
  );
}

const EMPTY = new Uint8Array(0);

function hash3(a: number, b: number, c: number): number {
  return ((a << 10) ^ (b << 5) ^ c) & HASH_MASK;
}

/** A dictionary's match index: built once, read by every call. */
export class DictDeflater {
  private readonly dict: Uint8Array;
  private readonly dictHead = new Int32Array(HASH_SIZE).fill(-1);
  private readonly dictPrev: Int32Array;
  // Per call: the text's own chains. A head entry counts only when its stamp is the current call's,
  // so nothing is cleared between calls.
  private readonly textHead = new Int32Array(HASH_SIZE);
  private readonly textStamp = new Uint32Array(HASH_SIZE);
  private readonly textPrev = new Int32Array(DICT_DEFLATE_MAX_INPUT);
  private stamp = 0;
  private readonly out = new Uint8Array(DICT_DEFLATE_MAX_INPUT * 2 + 16);
  private readonly cost = new Int32Array(DICT_DEFLATE_MAX_INPUT + 1);

  constructor(dictionary: Uint8Array) {
    // Deflate reaches back at most 32 KiB: only the dictionary's tail is usable, as zlib does.
    this.dict = dictionary.subarray(Math.max(0, dictionary.length - WINDOW));
    const d = this.dict;
    this.dictPrev = new Int32Array(d.length).fill(-1);
    for (let i = 0; i + MIN_MATCH <= d.length; i++) {
      const h = hash3(d[i] as number, d[i + 1] as number, d[i + 2] as number);
      this.dictPrev[i] = this.dictHead[h] as number;
      this.dictHead[h] = i;
    }
  }

  // The call in progress: its input, the literal cost prefix sums, the bit writer and the search.
  private input: Uint8Array = new Uint8Array(0);
  private n = 0;
  private o = 0;
  private acc = 0;
  private nacc = 0;
  private bestLen = 0;
  private bestDist = 0;
  private saving = 0;
  private budget = 0;
  private good = false;

  /**
   * The raw deflate stream of `input` (at most DICT_DEFLATE_MAX_INPUT bytes), in a new Uint8Array
   * of exactly its length. Throws a RangeError for a longer input.
   */
  deflate(input: Uint8Array): Uint8Array {
    const n = input.length;
    if (n > DICT_DEFLATE_MAX_INPUT) throw new RangeError(`input of ${n} bytes > ${DICT_DEFLATE_MAX_INPUT}`);
    this.stamp = (this.stamp + 1) >>> 0;
    if (this.stamp === 0) {
      this.textStamp.fill(0);
      this.stamp = 1;
    }
    this.input = input;
    this.n = n;
    this.o = 0;
    this.acc = 0;
    this.nacc = 0;
    // cost[k]: bits of input[0..k) as literals.
    const cost = this.cost;
    cost[0] = 0;
    for (let k = 0; k < n; k++) cost[k + 1] = (cost[k] as number) + (LIT_BITS[input[k] as number] as number);

    this.put(1, 1); // BFINAL
    this.put(1, 2); // BTYPE 01: fixed Huffman codes
    let p = 0;
    this.longest(0);
    while (p < n) {
      const len = this.bestLen;
      const dist = this.bestDist;
      this.insert(p);
      if (len === 0) {
        this.literal(input[p] as number);
        p++;
        this.longest(p);
        continue;
      }
      // One step of lazy matching, as zlib does: a longer match one byte later wins.
      if (len < MAX_LAZY) this.longest(p + 1);
      else this.bestLen = 0;
      if (this.bestLen > len) {
        this.literal(input[p] as number);
        p++;
        continue;
      }
      this.match(len, dist);
      for (let k = 1; k < len; k++) this.insert(p + k);
      p += len;
      this.longest(p);
    }
    this.put(LIT_CODE[256] as number, LIT_BITS[256] as number); // end of block
    if (this.nacc > 0) this.out[this.o++] = this.acc & 0xff;
    this.input = EMPTY;
    return this.out.slice(0, this.o);
  }

  private put(bits: number, count: number): void {
    this.acc |= bits << this.nacc;
    this.nacc += count;
    while (this.nacc >= 8) {
      this.out[this.o++] = this.acc & 0xff;
      this.acc >>>= 8;
      this.nacc -= 8;
    }
  }

  private literal(b: number): void {
    this.put(LIT_CODE[b] as number, LIT_BITS[b] as number);
  }

  private match(len: number, dist: number): void {
    const li = LENGTH_INDEX[len] as number;
    this.put(LIT_CODE[257 + li] as number, LIT_BITS[257 + li] as number);
    const le = LENGTH_EXTRA[li] as number;
    if (le > 0) this.put(len - (LENGTH_BASE[li] as number), le);
    const di = distIndex(dist);
    this.put(DIST_CODE[di] as number, 5);
    const de = DIST_EXTRA[di] as number;
    if (de > 0) this.put(dist - (DIST_BASE[di] as number), de);
  }

  /** Adds text position p to the text's hash chains. */
  private insert(p: number): void {
    const input = this.input;
    if (p + MIN_MATCH > this.n) return;
    const h = hash3(input[p] as number, input[p + 1] as number, input[p + 2] as number);
    this.textPrev[p] = this.textStamp[h] === this.stamp ? (this.textHead[h] as number) : -1;
    this.textHead[h] = p;
    this.textStamp[h] = this.stamp;
  }

  /** The best match at text position p into bestLen (0: none worth its bits) and bestDist. */
  private longest(p: number): void {
    this.bestLen = 0;
    this.bestDist = 0;
    const input = this.input;
    if (p + MIN_MATCH > this.n) return;
    const max = Math.min(MAX_MATCH, this.n - p);
    const D = this.dict.length;
    const h = hash3(input[p] as number, input[p + 1] as number, input[p + 2] as number);
    this.budget = MAX_CHAIN;
    this.saving = 0;
    this.good = false;
    // The text's own earlier positions first (closest), then the dictionary's.
    let x = this.textStamp[h] === this.stamp ? (this.textHead[h] as number) : -1;
    while (x >= 0 && this.budget-- > 0 && this.bestLen < NICE_MATCH) {
      this.consider(D + x, p, max);
      x = this.textPrev[x] as number;
    }
    x = this.dictHead[h] as number;
    while (x >= 0 && this.budget-- > 0 && this.bestLen < NICE_MATCH) {
      if (D + p - x > WINDOW) break;
      this.consider(x, p, max);
      x = this.dictPrev[x] as number;
    }
  }

  /** Candidate x (a position in dictionary ++ input) for a match at text position p. */
  private consider(x: number, p: number, max: number): void {
    const input = this.input;
    const dict = this.dict;
    const D = dict.length;
    const best = this.bestLen;
    // Only a longer match can win: it must agree at bestLen (zlib's scan_end test).
    if (best > 0) {
      if (best >= max) return;
      const y = x + best;
      if ((y < D ? dict[y] : input[y - D]) !== input[p + best]) return;
    }
    let len = 0;
    // Bytes of dictionary ++ input from x; a match may run on from the dictionary into the text.
    while (len < max) {
      const y = x + len;
      if ((y < D ? dict[y] : input[y - D]) !== input[p + len]) break;
      len++;
    }
    if (len < MIN_MATCH || len <= best) return;
    const dist = D + p - x;
    const gain = (this.cost[p + len] as number) - (this.cost[p] as number) - matchBits(len, dist);
    if (gain <= this.saving) return;
    this.saving = gain;
    this.bestLen = len;
    this.bestDist = dist;
    // A good match already: look at fewer candidates (zlib's good_length 8, chain / 4).
    if (len >= GOOD_MATCH && !this.good) {
      this.good = true;
      this.budget >>= 2;
    }
  }
}
