/**
 * The live rule set of each tenant, hot-reloaded: each tenant's file is polled (fs.watchFile: it
 * survives editors that save by rename, and NFS/container mounts where inotify is silent) and reloaded
 * when its mtime or size changes. A file that fails to read or validate leaves the last good rule set
 * in force and records the problems (with their lines) for the log and for `status()`.
 */

import { type Stats, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { MAX_RULES_FILE_BYTES, parseRules, type RuleSet, RulesError } from './rules.js';

export const DEFAULT_RULES_POLL_MS = 1000;

export interface RulesStatus {
  file: string;
  revision: string | null;
  loadedAt: number | null;
  /** The last load's problems, when it failed (the previous rule set stays live). */
  error: string | null;
}

export interface RulesLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

interface Entry {
  file: string;
  rules: RuleSet | null;
  status: RulesStatus;
  listener: ((cur: Stats, prev: Stats) => void) | null;
  loading: Promise<void> | null;
}

export class RulesRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly log: RulesLog,
    private readonly pollMs = DEFAULT_RULES_POLL_MS,
  ) {}

  /** The live rule set of `tenant`, or undefined when it has none (or none ever loaded). */
  get(tenant: string): RuleSet | undefined {
    return this.entries.get(tenant)?.rules ?? undefined;
  }

  status(tenant: string): RulesStatus | undefined {
    const e = this.entries.get(tenant);
    return e ? { ...e.status } : undefined;
  }

  /**
   * Makes `files` (tenant -> rules file path) the set of watched files: loads new and changed paths,
   * drops tenants no longer listed. Resolves when every new file had its first load attempt.
   */
  async sync(files: ReadonlyMap<string, string>): Promise<void> {
    for (const [tenant, e] of this.entries) {
      if (files.get(tenant) !== e.file) this.drop(tenant);
    }
    const loads: Promise<void>[] = [];
    for (const [tenant, file] of files) {
      if (this.entries.has(tenant)) continue;
      const entry: Entry = {
        file,
        rules: null,
        status: { file, revision: null, loadedAt: null, error: null },
        listener: null,
        loading: null,
      };
      this.entries.set(tenant, entry);
      entry.listener = (cur, prev) => {
        if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size) void this.reload(tenant, entry);
      };
      watchFile(file, { interval: this.pollMs, persistent: false }, entry.listener);
      loads.push(this.reload(tenant, entry));
    }
    await Promise.all(loads);
  }

  /** Reloads one tenant's file now (also what the poller does on a change). */
  reload(tenant: string, entry = this.entries.get(tenant)): Promise<void> {
    if (!entry) return Promise.resolve();
    // One load at a time per tenant; a change during a load is picked up by the next poll.
    entry.loading ??= this.load(tenant, entry).finally(() => {
      entry.loading = null;
    });
    return entry.loading;
  }

  close(): void {
    for (const tenant of [...this.entries.keys()]) this.drop(tenant);
  }

  private async load(tenant: string, entry: Entry): Promise<void> {
    try {
      const buf = await readFile(entry.file);
      if (buf.byteLength > MAX_RULES_FILE_BYTES) {
        throw new RulesError(entry.file, [
          { line: 1, path: '', message: `file exceeds ${MAX_RULES_FILE_BYTES} bytes` },
        ]);
      }
      const rules = parseRules(buf.toString('utf8'), entry.file);
      if (this.entries.get(tenant) !== entry) return;
      const changed = entry.rules?.revision !== rules.revision;
      entry.rules = rules;
      entry.status = { file: entry.file, revision: rules.revision, loadedAt: Date.now(), error: null };
      if (changed) {
        this.log.info(
          { tenant, file: entry.file, revision: rules.revision, rules: rules.rules.length },
          'rules loaded',
        );
      }
    } catch (err) {
      if (this.entries.get(tenant) !== entry) return;
      const message = err instanceof Error ? err.message : String(err);
      entry.status = { ...entry.status, error: message };
      this.log.error(
        { tenant, file: entry.file, keeping: entry.rules?.revision ?? null, problems: message },
        'rules file refused; the last good rules stay live',
      );
    }
  }

  private drop(tenant: string): void {
    const e = this.entries.get(tenant);
    if (!e) return;
    if (e.listener) unwatchFile(e.file, e.listener);
    this.entries.delete(tenant);
  }
}
