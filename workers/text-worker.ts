// Piscina worker module for CPU-bound text work. Pure CPU: no I/O and no imports from actors/.

import { DEFAULT_SENSITIVE_WORDS } from './default-words.js';
import { compileDictionary, type Dictionary, type ScanResult, scanText } from './sensitive-words.js';

/** A batch of texts to mask. Without `words`, DEFAULT_SENSITIVE_WORDS is used. */
export interface FilterTask {
  readonly op: 'filter';
  readonly texts: readonly string[];
  readonly words?: readonly string[];
}

export type TextTask = FilterTask;

/** One result per input text, in input order. */
export interface FilterResult {
  readonly results: ScanResult[];
}

/** Distinct custom word lists kept compiled per worker; older lists are recompiled on demand. */
export const MAX_CACHED_DICTIONARIES = 16;

// Compiled once per worker thread, when piscina loads the module.
const defaultDictionary = compileDictionary(DEFAULT_SENSITIVE_WORDS);

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

/**
 * Task entry point (piscina calls the default export). For `op: 'filter'` returns the masked texts and
 * their hits, one result per input text in the same order. Throws an Error for an unknown `op` or a
 * malformed task; piscina rejects the caller's `run()` promise with it.
 */
export default function runTextTask(task: TextTask): FilterResult {
  // Tasks cross a thread boundary untyped, so the shape is checked here rather than trusted.
  const op: unknown = (task as { op?: unknown } | null)?.op;
  if (op !== 'filter') {
    throw new Error(`text-worker: unknown op ${JSON.stringify(op)} (expected "filter")`);
  }
  if (!isStringArray(task.texts)) {
    throw new Error('text-worker: filter task texts must be an array of strings');
  }
  if (task.words !== undefined && !isStringArray(task.words)) {
    throw new Error('text-worker: filter task words must be an array of strings when given');
  }
  const dictionary = dictionaryFor(task.words);
  return { results: task.texts.map((text) => scanText(dictionary, text)) };
}
