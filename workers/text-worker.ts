// Piscina worker module for CPU-bound text work. Pure CPU: no I/O and no imports from actors/ or src/.
// Every op takes a micro-batch (many texts or rows per task) and answers one result per input, in
// input order, so dispatch cost is paid once per batch.

import {
  compressBodies,
  DEFAULT_BODY_ENC,
  decompressBodies,
  dictDeflateFallbackCount,
  type EncodedBody,
} from './compression.js';
import { applyPolicy, PolicyCache, type PolicyResult, type PolicySet } from './content-policy.js';
import { DEFAULT_SENSITIVE_WORDS } from './default-words.js';
import { maskPii, type PiiResult } from './pii.js';
import { compileDictionary, type Dictionary, type ScanResult, scanText } from './sensitive-words.js';

/** A batch of texts to mask. Without `words`, DEFAULT_SENSITIVE_WORDS is used. */
export interface FilterTask {
  readonly op: 'filter';
  readonly texts: readonly string[];
  readonly words?: readonly string[];
}

/** Bodies to store. `enc` is the body_enc to try (default DEFAULT_BODY_ENC); 0 forces plain UTF-8. */
export interface CompressTask {
  readonly op: 'compress';
  readonly texts: readonly string[];
  readonly enc?: number;
}

/** Stored bodies to read, as `{enc, data}` rows (a Buffer from the driver arrives as Uint8Array). */
export interface DecompressTask {
  readonly op: 'decompress';
  readonly items: readonly EncodedBody[];
}

/** Texts whose phone numbers, ID numbers, bank cards and e-mail addresses are to be masked. */
export interface PiiTask {
  readonly op: 'pii';
  readonly texts: readonly string[];
}

/**
 * Texts of one tenant checked against its content policy. The policy travels with every task; a
 * worker recompiles it only when `policy.version` differs from the one it holds for `tenant`.
 */
export interface PolicyTask {
  readonly op: 'policy';
  readonly tenant: string;
  readonly policy: PolicySet;
  readonly texts: readonly string[];
}

/**
 * A chat text on its way in, in one task: the tenant's content policy when given (else the default
 * word list), then, unless the verdict blocks it, PII masking of the result for the agents' view.
 * One round trip instead of two sequential ones (filter or policy, then pii).
 */
export interface ScreenTask {
  readonly op: 'screen';
  readonly texts: readonly string[];
  /** Both or neither: the tenant's policy, compiled per worker as for `policy`. */
  readonly tenant?: string;
  readonly policy?: PolicySet;
  /**
   * Also encode each text that is not blocked as it will be stored (`compress`'s default encoding), so
   * the message's owner needs no pool task of its own for it (issue #13: one hand-off per message fewer).
   */
  readonly store?: boolean;
}

export type SingleTask = FilterTask | CompressTask | DecompressTask | PiiTask | PolicyTask | ScreenTask;

/**
 * Several tasks in one hand-off (the pool sends every lane that holds inputs together): one result
 * per part, in order. Parts are single tasks, never batches.
 */
export interface BatchTask {
  readonly op: 'batch';
  readonly parts: readonly SingleTask[];
}

export type TextTask = SingleTask | BatchTask;

/** One result per input text, in input order. */
export interface FilterResult {
  readonly results: ScanResult[];
}

/** One stored body per input text, in input order; each `data` owns an exact-size buffer. */
export interface CompressResult {
  readonly items: EncodedBody[];
  /**
   * Bodies of this task whose dict-deflate result did not inflate back to the text, so zlib's was
   * used (compression.ts). Absent when 0, which it always is unless dict-deflate.ts has a bug.
   */
  readonly fallbacks?: number;
}

/** One text per input row, in input order. */
export interface DecompressResult {
  readonly texts: string[];
}

/** One result per input text, in input order. */
export interface PiiTaskResult {
  readonly results: PiiResult[];
}

/** One result per input text, in input order. */
export interface PolicyTaskResult {
  readonly results: PolicyResult[];
}

/** A screened text: the policy verdict plus `agentText`, the text with PII masked (= text when blocked). */
export interface ScreenedText extends PolicyResult {
  readonly agentText: string;
  /** `text` encoded for storage, when the task asked (`store`) and the text is not blocked. */
  readonly stored?: EncodedBody;
}

/** One result per input text, in input order. */
export interface ScreenTaskResult {
  readonly results: ScreenedText[];
  /** As CompressResult's, for the bodies encoded (`store`). */
  readonly fallbacks?: number;
}

/** One result per part of a BatchTask, in order. */
export interface BatchResult {
  readonly results: TextResult[];
}

export type TextResult =
  | BatchResult
  | FilterResult
  | CompressResult
  | DecompressResult
  | PiiTaskResult
  | PolicyTaskResult
  | ScreenTaskResult;

/** Distinct custom word lists kept compiled per worker; older lists are recompiled on demand. */
export const MAX_CACHED_DICTIONARIES = 16;

const OPS: readonly TextTask['op'][] = [
  'filter',
  'compress',
  'decompress',
  'pii',
  'policy',
  'screen',
  'batch',
];

// Compiled once per worker thread, when piscina loads the module.
const defaultDictionary = compileDictionary(DEFAULT_SENSITIVE_WORDS);
const policies = new PolicyCache();

// Map iteration order is insertion order, so re-inserting on a hit makes the first key the least
// recently used one.
const dictionaryCache = new Map<string, Dictionary>();

function dictionaryFor(words: readonly string[] | undefined): Dictionary {
  if (words === undefined) return defaultDictionary;
  // JSON keeps the key unambiguous whatever characters the words contain.
  const key = JSON.stringify(words);
  const cached = dictionaryCache.get(key);
  if (cached !== undefined) {
    dictionaryCache.delete(key);
    dictionaryCache.set(key, cached);
    return cached;
  }
  const compiled = compileDictionary(words);
  dictionaryCache.set(key, compiled);
  if (dictionaryCache.size > MAX_CACHED_DICTIONARIES) {
    const oldest = dictionaryCache.keys().next();
    if (oldest.done !== true) dictionaryCache.delete(oldest.value);
  }
  return compiled;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function checkTexts(task: { op: string; texts?: unknown }): void {
  if (!isStringArray(task.texts)) {
    throw new Error(`text-worker: ${task.op} task texts must be an array of strings`);
  }
}

function checkItems(items: unknown): void {
  if (!Array.isArray(items)) throw new Error('text-worker: decompress task items must be an array');
  items.forEach((item: { enc?: unknown; data?: unknown } | null, i) => {
    if (typeof item !== 'object' || item === null || !Number.isInteger(item.enc)) {
      throw new Error(`text-worker: decompress item ${i} must be {enc: integer, data: Uint8Array}`);
    }
    if (!(item.data instanceof Uint8Array)) {
      throw new Error(`text-worker: decompress item ${i} data must be a Uint8Array`);
    }
  });
}

/**
 * Task entry point (piscina calls the default export). Dispatches on `op` and returns that op's
 * result, one entry per input in the same order. Throws an Error for an unknown `op`, a malformed
 * task, an invalid policy, or (decompress) a row that cannot be read; piscina rejects the caller's
 * `run()` promise with it, so one bad row fails its whole batch.
 */
export default function runTextTask(task: FilterTask): FilterResult;
export default function runTextTask(task: CompressTask): CompressResult;
export default function runTextTask(task: DecompressTask): DecompressResult;
export default function runTextTask(task: PiiTask): PiiTaskResult;
export default function runTextTask(task: PolicyTask): PolicyTaskResult;
export default function runTextTask(task: ScreenTask): ScreenTaskResult;
export default function runTextTask(task: BatchTask): BatchResult;
export default function runTextTask(task: TextTask): TextResult;
export default function runTextTask(task: TextTask): TextResult {
  // Tasks cross a thread boundary untyped, so the shape is checked here rather than trusted.
  const op: unknown = (task as { op?: unknown } | null)?.op;
  switch (op) {
    case 'batch': {
      const parts: unknown = (task as BatchTask).parts;
      if (!Array.isArray(parts)) throw new Error('text-worker: batch task parts must be an array');
      return {
        results: parts.map((part: TextTask) => {
          if ((part as { op?: unknown } | null)?.op === 'batch') {
            throw new Error('text-worker: a batch part cannot be a batch');
          }
          return runTextTask(part);
        }),
      };
    }
    case 'filter': {
      const t = task as FilterTask;
      checkTexts(t);
      if (t.words !== undefined && !isStringArray(t.words)) {
        throw new Error('text-worker: filter task words must be an array of strings when given');
      }
      const dictionary = dictionaryFor(t.words);
      return { results: t.texts.map((text) => scanText(dictionary, text)) };
    }
    case 'compress': {
      const t = task as CompressTask;
      checkTexts(t);
      if (t.enc !== undefined && !Number.isInteger(t.enc)) {
        throw new Error('text-worker: compress task enc must be an integer when given');
      }
      const before = dictDeflateFallbackCount();
      const items = compressBodies(t.texts, t.enc ?? DEFAULT_BODY_ENC);
      const fallbacks = dictDeflateFallbackCount() - before;
      return fallbacks > 0 ? { items, fallbacks } : { items };
    }
    case 'decompress': {
      const t = task as DecompressTask;
      checkItems(t.items);
      return { texts: decompressBodies(t.items) };
    }
    case 'pii': {
      const t = task as PiiTask;
      checkTexts(t);
      return { results: t.texts.map((text) => maskPii(text)) };
    }
    case 'policy': {
      const t = task as PolicyTask;
      checkTexts(t);
      const compiled = compiledPolicy(t.op, t.tenant, t.policy);
      return { results: t.texts.map((text) => applyPolicy(compiled, text)) };
    }
    case 'screen': {
      const t = task as ScreenTask;
      checkTexts(t);
      if ((t.tenant === undefined) !== (t.policy === undefined)) {
        throw new Error('text-worker: screen task takes tenant and policy together, or neither');
      }
      const compiled = t.policy === undefined ? undefined : compiledPolicy(t.op, t.tenant, t.policy);
      const results = t.texts.map((text) => screen(compiled, text));
      if (t.store !== true) return { results };
      const before = dictDeflateFallbackCount();
      // One encode call for the texts that passed, as the compress op takes them.
      const bodies = compressBodies(results.filter((r) => !r.blocked).map((r) => r.text));
      let next = 0;
      const stored = results.map((r) => (r.blocked ? r : { ...r, stored: bodies[next++]! }));
      const fallbacks = dictDeflateFallbackCount() - before;
      return fallbacks > 0 ? { results: stored, fallbacks } : { results: stored };
    }
    default:
      throw new Error(`text-worker: unknown op ${JSON.stringify(op)} (expected one of ${OPS.join(', ')})`);
  }
}

function compiledPolicy(op: string, tenant: unknown, policy: PolicySet): ReturnType<PolicyCache['get']> {
  if (typeof tenant !== 'string' || tenant.length === 0) {
    throw new Error(`text-worker: ${op} task tenant must be a non-empty string`);
  }
  try {
    return policies.get(tenant, policy);
  } catch (err) {
    throw new Error(`text-worker: tenant ${JSON.stringify(tenant)}: ${(err as Error).message}`);
  }
}

function screen(compiled: ReturnType<PolicyCache['get']> | undefined, text: string): ScreenedText {
  let verdict: PolicyResult;
  if (compiled === undefined) {
    const scan = scanText(defaultDictionary, text);
    verdict = {
      text: scan.text,
      blocked: false,
      review: false,
      hits: scan.hits.map((word) => ({ word, action: 'mask' as const })),
    };
  } else {
    verdict = applyPolicy(compiled, text);
  }
  return { ...verdict, agentText: verdict.blocked ? verdict.text : maskPii(verdict.text).text };
}
