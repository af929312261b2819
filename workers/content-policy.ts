// Per-tenant content policies: word lists with an action each (mask, block, review), compiled to one
// Aho-Corasick automaton (workers/sensitive-words.ts) and cached per worker thread by tenant and version.
// Pure CPU code with no I/O, so it runs on the piscina pool (see text-worker.ts) and in unit tests.

import {
  compileDictionary,
  type Dictionary,
  findMatches,
  maskSpans,
  matchKey,
  type WordMatch,
} from './sensitive-words.js';

/** `mask`: replace the word with `*`; `block`: refuse the message; `review`: deliver it, flagged. */
export type PolicyAction = 'mask' | 'block' | 'review';

/** A tenant's policy. `version` names the rules: equal versions must mean equal rules. */
export interface PolicySet {
  readonly version: string;
  readonly rules: ReadonlyArray<{ readonly words: readonly string[]; readonly action: PolicyAction }>;
}

/** A policy ready to apply; opaque and immutable. */
export interface CompiledPolicy {
  readonly version: string;
  readonly dictionary: Dictionary;
  /** Per pattern id of `dictionary`: a bit set of ACTION_BITS. */
  readonly actions: Uint8Array;
  /** Trie nodes, the measure of its memory held by PolicyCache. */
  readonly nodes: number;
}

/** A word of the policy found in a text (its normalised form) and one action it carries. */
export interface PolicyHit {
  readonly word: string;
  readonly action: PolicyAction;
}

/** The outcome of `applyPolicy`. */
export interface PolicyResult {
  readonly text: string;
  readonly blocked: boolean;
  readonly review: boolean;
  readonly hits: PolicyHit[];
}

/** Tenants whose compiled policy a worker thread keeps; the least recently used one goes first. */
export const MAX_CACHED_POLICIES = 32;
/** Trie nodes kept compiled per worker thread over all tenants (a node costs roughly 100-200 bytes). */
export const MAX_CACHED_POLICY_NODES = 2_000_000;
/** Words in one policy, over all its rules. */
export const MAX_POLICY_WORDS = 50_000;
/** Characters (UTF-16 units) in one policy word. */
export const MAX_POLICY_WORD_CHARS = 64;
/** Characters in a policy version string. */
export const MAX_POLICY_VERSION_CHARS = 128;

const ACTIONS: readonly PolicyAction[] = ['mask', 'block', 'review'];
const ACTION_BITS: Readonly<Record<PolicyAction, number>> = { mask: 1, block: 2, review: 4 };

/**
 * Checks an untrusted value (it crossed a thread boundary) against the PolicySet shape and the size
 * limits above; returns it typed, or throws an Error with a fixed message naming the field.
 */
export function validatePolicy(value: unknown): PolicySet {
  const policy = value as { version?: unknown; rules?: unknown } | null;
  if (typeof policy !== 'object' || policy === null) throw new Error('policy must be an object');
  const { version, rules } = policy;
  if (typeof version !== 'string' || version.length === 0 || version.length > MAX_POLICY_VERSION_CHARS) {
    throw new Error(`policy version must be a string of 1-${MAX_POLICY_VERSION_CHARS} characters`);
  }
  if (!Array.isArray(rules)) throw new Error('policy rules must be an array');
  let words = 0;
  for (const rule of rules as unknown[]) {
    const r = rule as { words?: unknown; action?: unknown } | null;
    if (typeof r !== 'object' || r === null) throw new Error('policy rule must be an object');
    if (!ACTIONS.includes(r.action as PolicyAction)) {
      throw new Error(`policy rule action must be one of ${ACTIONS.join(', ')}`);
    }
    if (!Array.isArray(r.words)) throw new Error('policy rule words must be an array of strings');
    for (const word of r.words as unknown[]) {
      if (typeof word !== 'string') throw new Error('policy rule words must be an array of strings');
      if (word.length > MAX_POLICY_WORD_CHARS) {
        throw new Error(`policy words must be at most ${MAX_POLICY_WORD_CHARS} characters`);
      }
    }
    words += r.words.length;
  }
  if (words > MAX_POLICY_WORDS) throw new Error(`policy must have at most ${MAX_POLICY_WORDS} words`);
  return policy as PolicySet;
}

/**
 * Compiles a validated policy. A word listed under several actions carries all of them; words equal
 * after normalisation ("Bad", "ＢＡＤ", "b-a-d") are one pattern. Linear in the total word length.
 */
export function compilePolicy(policy: PolicySet): CompiledPolicy {
  // Patterns by match key, in first-seen order, so pattern ids line up with compileDictionary's.
  const patterns = new Map<string, { word: string; bits: number }>();
  for (const rule of policy.rules) {
    for (const word of rule.words) {
      const key = matchKey(word);
      if (key.length === 0) continue;
      const id = key.join(',');
      const seen = patterns.get(id);
      if (seen) seen.bits |= ACTION_BITS[rule.action];
      else patterns.set(id, { word, bits: ACTION_BITS[rule.action] });
    }
  }
  const entries = [...patterns.values()];
  const dictionary = compileDictionary(entries.map((p) => p.word));
  return {
    version: policy.version,
    dictionary,
    actions: Uint8Array.from(entries, (p) => p.bits),
    nodes: dictionary.children.length,
  };
}

/**
 * Applies a compiled policy to one text. Matching is that of `scanText` (substring, case, full-width,
 * separators between letters, Chinese). Only words with the `mask` action are masked in `text` (one
 * `*` per code point); `blocked` / `review` say whether any `block` / `review` word occurred. `hits`
 * holds each distinct (word, action) pair, by first start in the text, then mask, block, review.
 * With no mask hit the input string itself is returned as `text`.
 */
export function applyPolicy(compiled: CompiledPolicy, text: string): PolicyResult {
  if (compiled.dictionary.words.length === 0 || text.length === 0) {
    return { text, blocked: false, review: false, hits: [] };
  }
  const codePoints = Array.from(text);
  const matches = findMatches(compiled.dictionary, codePoints);
  if (matches.length === 0) return { text, blocked: false, review: false, hits: [] };

  const firstStart = new Map<number, number>();
  const masked: WordMatch[] = [];
  let bitsSeen = 0;
  for (const match of matches) {
    const bits = compiled.actions[match.id]!;
    bitsSeen |= bits;
    if (bits & ACTION_BITS.mask) masked.push(match);
    const seen = firstStart.get(match.id);
    if (seen === undefined || match.start < seen) firstStart.set(match.id, match.start);
  }
  const hits: PolicyHit[] = [];
  for (const [id] of [...firstStart].sort((a, b) => a[1] - b[1])) {
    const word = compiled.dictionary.words[id]!;
    for (const action of ACTIONS) {
      if (compiled.actions[id]! & ACTION_BITS[action]) hits.push({ word, action });
    }
  }
  return {
    text: masked.length > 0 ? maskSpans(codePoints, masked) : text,
    blocked: (bitsSeen & ACTION_BITS.block) !== 0,
    review: (bitsSeen & ACTION_BITS.review) !== 0,
    hits,
  };
}

/**
 * Compiled policies of one worker thread, one per tenant, least recently used evicted first once
 * more than `maxTenants` are held or their trie nodes exceed `maxNodes` (the entry in use is never
 * evicted). `get` recompiles only when the tenant's version differs from the cached one, so a new
 * version is a hot reload and an unchanged version costs a map look-up.
 */
export class PolicyCache {
  private readonly entries = new Map<string, CompiledPolicy>();
  private nodes = 0;
  private compileCount = 0;

  constructor(
    readonly maxTenants: number = MAX_CACHED_POLICIES,
    readonly maxNodes: number = MAX_CACHED_POLICY_NODES,
  ) {}

  /** The compiled policy for `tenant` at `policy.version`; validates and compiles it on a miss. */
  get(tenant: string, policy: unknown): CompiledPolicy {
    const version = (policy as { version?: unknown } | null)?.version;
    const cached = this.entries.get(tenant);
    if (cached !== undefined) {
      // Re-inserting keeps Map order = recency order, so the first key is the eviction candidate.
      this.entries.delete(tenant);
      if (cached.version === version) {
        this.entries.set(tenant, cached);
        return cached;
      }
      this.nodes -= cached.nodes;
    }
    const compiled = compilePolicy(validatePolicy(policy));
    this.compileCount++;
    this.entries.set(tenant, compiled);
    this.nodes += compiled.nodes;
    while (this.entries.size > 1 && (this.entries.size > this.maxTenants || this.nodes > this.maxNodes)) {
      const [oldest, evicted] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      this.nodes -= evicted.nodes;
    }
    return compiled;
  }

  /** Tenants held now. */
  get size(): number {
    return this.entries.size;
  }

  /** Policies compiled since this cache was created (misses and version changes). */
  get compiles(): number {
    return this.compileCount;
  }
}
