/**
 * Per-tenant content policies, resolved from the tenants file (`contentPolicy` section) and the word
 * files it names, into the PolicySet the pool's `policy` op compiles. A policy's `version` is a hash
 * of its rules, so any change — the tenants file reloaded, or a word file edited — is a new version,
 * and every pool worker recompiles its automaton on its next task for that tenant (the workers'
 * PolicyCache compares versions): hot reload without a restart.
 *
 * Bounds: one resolved policy per listed tenant plus one for the defaults (the tenants file caps
 * tenants at MAX_TENANTS); word files of at most MAX_WORDS_FILE_BYTES; words per policy as the worker
 * validates (MAX_POLICY_WORDS).
 */
import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import type { PolicyAction, PolicySet } from '../../workers/content-policy.js';
import { validatePolicy } from '../../workers/content-policy.js';
import type { TenantRegistry } from '../tenants.js';

export const MAX_WORDS_FILE_BYTES = 4 * 1024 * 1024;
/** Wait after a word file changes before reading it (editors write in several steps). */
export const WORDS_RELOAD_DEBOUNCE_MS = 100;

interface Resolved {
  readonly key: string;
  readonly policy: PolicySet | undefined;
}

export interface ContentPoliciesOptions {
  log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  debounceMs?: number;
}

export class ContentPolicies {
  readonly #tenants: Pick<TenantRegistry, 'tenant' | 'current'>;
  readonly #opts: ContentPoliciesOptions;
  /** tenant (or the defaults) -> resolved policy, valid while its key (generation, file epoch) holds. */
  readonly #resolved = new Map<string, Resolved>();
  /** Absolute word-file path -> its words (read once, dropped when the file changes). */
  readonly #files = new Map<string, Promise<string[]>>();
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #epoch = 0;
  #key = '';
  #closed = false;

  constructor(tenants: Pick<TenantRegistry, 'tenant' | 'current'>, opts: ContentPoliciesOptions) {
    this.#tenants = tenants;
    this.#opts = opts;
  }

  /**
   * The tenant's policy, or undefined when it has none (then the built-in word list is masked).
   * Rejects when a word file cannot be read or the policy is invalid (too many or too long words).
   */
  async policyFor(tenant: string): Promise<PolicySet | undefined> {
    const settings = this.#tenants.tenant(tenant);
    // Unlisted tenants share the defaults: one entry, however many tenant ids are seen.
    const slot = settings.listed ? tenant : '\u0000defaults';
    const key = `${this.#tenants.current.generation}:${this.#epoch}`;
    // A new tenants file or word file: drop every entry (tenants may have left the file).
    if (key !== this.#key) {
      this.#resolved.clear();
      this.#key = key;
    }
    const cached = this.#resolved.get(slot);
    if (cached !== undefined && cached.key === key) return cached.policy;
    const spec = settings.contentPolicy;
    let policy: PolicySet | undefined;
    if (spec !== undefined) {
      const rules: { words: string[]; action: PolicyAction }[] = [];
      for (const rule of spec.rules) {
        const words = [...(rule.words ?? [])];
        if (rule.wordsFile !== undefined) words.push(...(await this.#wordsOf(rule.wordsFile)));
        rules.push({ words, action: rule.action });
      }
      const version = createHash('sha256').update(JSON.stringify(rules)).digest('hex').slice(0, 24);
      policy = validatePolicy({ version, rules });
    }
    this.#resolved.set(slot, { key, policy });
    return policy;
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#watchers.values()) w.close();
    for (const t of this.#timers) clearTimeout(t);
    this.#watchers.clear();
  }

  async #wordsOf(file: string): Promise<string[]> {
    const base = this.#tenants.current.file;
    const path = isAbsolute(file) || base === undefined ? resolve(file) : resolve(dirname(base), file);
    let words = this.#files.get(path);
    if (words === undefined) {
      words = readWords(path);
      this.#files.set(path, words);
      words.catch(() => this.#files.delete(path));
      this.#watch(path);
    }
    return words;
  }

  /** Watches the file's directory (editors replace files by rename, which ends a watch on the file). */
  #watch(path: string): void {
    if (this.#closed || this.#watchers.has(path)) return;
    const name = basename(path);
    try {
      const watcher = watch(dirname(path), { persistent: false }, (_event, changed) => {
        if (changed !== null && changed !== name) return;
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#files.delete(path);
          this.#epoch++;
          this.#opts.log.info({ file: path }, 'sensitive-word file changed; policies reload');
        }, this.#opts.debounceMs ?? WORDS_RELOAD_DEBOUNCE_MS);
        timer.unref();
        this.#timers.add(timer);
      });
      watcher.on('error', (err) => this.#opts.log.error({ err, file: path }, 'word file watch failed'));
      this.#watchers.set(path, watcher);
    } catch (err) {
      this.#opts.log.error({ err, file: path }, 'cannot watch a sensitive-word file');
    }
  }
}

/** One word per line; blank lines and lines starting with `#` are skipped. */
async function readWords(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  if (text.length > MAX_WORDS_FILE_BYTES) throw new Error(`word file ${path} is larger than 4 MiB`);
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
}
