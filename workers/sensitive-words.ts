// Sensitive-word masking: an Aho-Corasick automaton over normalised code points.
// Pure CPU code with no I/O, so it can run on the piscina pool (see text-worker.ts) and in unit tests.

/**
 * A compiled dictionary. Build it with `compileDictionary` and treat it as opaque and immutable;
 * `words` lists the distinct normalised words, indexed by pattern id.
 */
export interface Dictionary {
  readonly words: readonly string[];
  /** Per node: code point -> child node. Node 0 is the root. */
  readonly children: readonly ReadonlyMap<number, number>[];
  /** Per node: the node of its longest proper suffix that is also in the trie. */
  readonly fail: Int32Array;
  /** Per node: id of the word ending exactly here, or -1. */
  readonly output: Int32Array;
  /** Per node: nearest node on the fail chain (excluding itself) that ends a word, or -1. */
  readonly outputLink: Int32Array;
  /** Per word id: its length in normalised code points (separators excluded). */
  readonly lengths: Int32Array;
}

const ROOT = 0;
const NONE = -1;

// Whitespace, punctuation and symbols are what people put between letters to dodge a filter ("b a-d",
// "b.a.d", "b★a★d"). \p{Cf} is added on purpose: zero-width space (U+200B) and soft hyphen (U+00AD) are
// format characters, not \p{Z}, yet they are the most common invisible way to split a word.
const SEPARATOR = /^[\p{Z}\p{P}\p{S}\p{Cf}]$/u;
const ASCII_LIMIT = 0x80;

// Chat text is mostly ASCII, so its separator test and normalisation are table lookups.
const ASCII_SEPARATOR: readonly boolean[] = Array.from({ length: ASCII_LIMIT }, (_, cp) =>
  SEPARATOR.test(String.fromCodePoint(cp)),
);

/** True when the code point is skipped inside a match (\p{Z}, \p{P}, \p{S} or \p{Cf}). */
export function isSeparator(cp: number): boolean {
  return cp < ASCII_LIMIT ? ASCII_SEPARATOR[cp] === true : SEPARATOR.test(String.fromCodePoint(cp));
}

/**
 * Normalises one code point for matching: NFKC (full-width Latin and digits become half-width), then
 * lower case. Returns the resulting code points with separators dropped; usually one, possibly several
 * ("ﬁ" -> f, i) or none. Text and dictionary words go through this same function, so they always agree;
 * the price is that a word written precomposed ("é") does not match a decomposed one ("e" + U+0301).
 */
export function normalizeCodePoint(cp: number): number[] {
  if (cp < ASCII_LIMIT) {
    if (ASCII_SEPARATOR[cp] === true) return [];
    return [cp >= 0x41 && cp <= 0x5a ? cp + 0x20 : cp];
  }
  const out: number[] = [];
  for (const ch of String.fromCodePoint(cp).normalize('NFKC').toLowerCase()) {
    const n = ch.codePointAt(0)!;
    if (!isSeparator(n)) out.push(n);
  }
  return out;
}

/** Normalises a whole word for display in `hits`: trimmed, NFKC, lower case; inner separators kept. */
export function normalizeWord(word: string): string {
  return word.trim().normalize('NFKC').toLowerCase();
}

/**
 * The automaton key of a word: its code points normalised one by one, with every separator removed,
 * because the scanner skips separators in the text and would never feed them to the automaton. Two
 * words with equal keys are the same pattern ("Bad", "ＢＡＤ", "b-a-d"); an empty key matches nothing.
 */
export function matchKey(word: string): number[] {
  const key: number[] = [];
  for (const ch of word) {
    const cp = ch.codePointAt(0)!;
    if (!isSeparator(cp)) key.push(...normalizeCodePoint(cp));
  }
  return key;
}

/**
 * Builds the Aho-Corasick automaton for `words`. Words that are empty or contain only separators are
 * ignored; words with the same match key ("Bad", "ＢＡＤ", "b-a-d") are kept once, the first one naming
 * the hit. Cost is linear in the total length of the words.
 */
export function compileDictionary(words: readonly string[]): Dictionary {
  const children: Map<number, number>[] = [new Map()];
  const nodeOutput: number[] = [NONE];
  const labels: string[] = [];
  const lengths: number[] = [];

  for (const word of words) {
    const key = matchKey(word);
    if (key.length === 0) continue;
    let node = ROOT;
    for (const cp of key) {
      let next = children[node]!.get(cp);
      if (next === undefined) {
        next = children.length;
        children.push(new Map());
        nodeOutput.push(NONE);
        children[node]!.set(cp, next);
      }
      node = next;
    }
    if (nodeOutput[node] !== NONE) continue;
    nodeOutput[node] = labels.length;
    labels.push(normalizeWord(word));
    lengths.push(key.length);
  }

  const fail = new Int32Array(children.length);
  const output = Int32Array.from(nodeOutput);
  const outputLink = new Int32Array(children.length).fill(NONE);
  // Breadth-first, so a node's fail target (always shallower) is final before the node is visited.
  const queue: number[] = [...children[ROOT]!.values()];
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head]!;
    for (const [cp, child] of children[node]!) {
      let f = fail[node]!;
      while (f !== ROOT && !children[f]!.has(cp)) f = fail[f]!;
      fail[child] = children[f]!.get(cp) ?? ROOT;
      const suffix = fail[child]!;
      outputLink[child] = output[suffix] !== NONE ? suffix : outputLink[suffix]!;
      queue.push(child);
    }
  }

  return { words: labels, children, fail, output, outputLink, lengths: Int32Array.from(lengths) };
}

/** The outcome of `scanText`. */
export interface ScanResult {
  readonly text: string;
  readonly hits: string[];
}

/**
 * One occurrence of a dictionary word: `id` indexes `Dictionary.words`; `start` and `end` (exclusive)
 * index the code points of the scanned text (`Array.from(text)`). A span never starts or ends on a
 * separator but may contain separators.
 */
export interface WordMatch {
  readonly id: number;
  readonly start: number;
  readonly end: number;
}

/**
 * Every occurrence of every dictionary word in `codePoints`, overlapping ones included, ordered by end
 * position (ties: longest first). Separators between the letters of a word are skipped (see
 * `scanText`). Runs in O(text length + number of matches).
 */
export function findMatches(dict: Dictionary, codePoints: readonly string[]): WordMatch[] {
  const matches: WordMatch[] = [];
  if (dict.words.length === 0) return matches;
  // origin[k] is the index in `codePoints` of the k-th normalised code point fed to the automaton.
  const origin: number[] = [];
  let state = ROOT;
  for (let i = 0; i < codePoints.length; i++) {
    const cp = codePoints[i]!.codePointAt(0)!;
    // A separator never advances or resets the automaton: that is what lets "b a-d" match, while a
    // separator before a word's first letter stays outside the span.
    if (isSeparator(cp)) continue;
    for (const n of normalizeCodePoint(cp)) {
      origin.push(i);
      state = step(dict, state, n);
      let node = dict.output[state] !== NONE ? state : dict.outputLink[state]!;
      while (node !== NONE) {
        const id = dict.output[node]!;
        matches.push({ id, start: origin[origin.length - dict.lengths[id]!]!, end: i + 1 });
        node = dict.outputLink[node]!;
      }
    }
  }
  return matches;
}

/**
 * Replaces every code point covered by at least one span with one `*`; the rest is kept as written.
 * Spans index `codePoints` as in `WordMatch`.
 */
export function maskSpans(codePoints: readonly string[], spans: readonly WordMatch[]): string {
  // Coverage as a difference array: +1 at a span's start, -1 just after its end.
  const coverage = new Int32Array(codePoints.length + 1);
  for (const span of spans) {
    coverage[span.start]!++;
    coverage[span.end]!--;
  }
  let masked = '';
  let depth = 0;
  for (let i = 0; i < codePoints.length; i++) {
    depth += coverage[i]!;
    masked += depth > 0 ? '*' : codePoints[i]!;
  }
  return masked;
}

/**
 * Masks every dictionary word found in `text`.
 *
 * - Matching is by substring: "bad" also matches inside "badge". Separators (see `isSeparator`) between
 *   the letters of a word are skipped, so "b a-d" and "ＢＡＤ" match "bad". Because of that skipping, a
 *   word can also match across word boundaries ("is cam" contains "scam"); that is accepted as the price
 *   of catching spaced-out evasions.
 * - A masked span runs from the first to the last matched code point, separators in between included;
 *   it never starts or ends on a separator. Each masked code point becomes one `*` (an emoji is one `*`),
 *   everything else is kept exactly as written. Overlapping matches are all masked.
 * - `hits` are the distinct normalised words found, ordered by where they first start in the text.
 * - With no match the input string itself is returned.
 *
 * Runs in O(text length + number of matches).
 */
export function scanText(dict: Dictionary, text: string): ScanResult {
  if (dict.words.length === 0 || text.length === 0) return { text, hits: [] };
  const codePoints = Array.from(text);
  const matches = findMatches(dict, codePoints);
  if (matches.length === 0) return { text, hits: [] };

  const firstStart = new Map<number, number>();
  for (const { id, start } of matches) {
    const seen = firstStart.get(id);
    if (seen === undefined || start < seen) firstStart.set(id, start);
  }
  // Map order is discovery order (by end position); the stable sort turns it into start order.
  const hits = [...firstStart].sort((a, b) => a[1] - b[1]).map(([id]) => dict.words[id]!);
  return { text: maskSpans(codePoints, matches), hits };
}

// Standard Aho-Corasick goto with fail fallback; amortised O(1) per input code point.
function step(dict: Dictionary, state: number, cp: number): number {
  let s = state;
  for (;;) {
    const next = dict.children[s]!.get(cp);
    if (next !== undefined) return next;
    if (s === ROOT) return ROOT;
    s = dict.fail[s]!;
  }
}
