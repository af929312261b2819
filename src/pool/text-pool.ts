/**
 * The worker pool (piscina) and its micro-batcher. Every op (filter, policy, pii, screen,
 * compress, decompress) goes through a lane: a lane is one op (and, for `policy` or `screen` with a
 * policy, one tenant and policy version: a part carries one policy); lanes live only while they hold
 * inputs. One task carries every lane that holds inputs (a `batch` of parts), so a screen and a
 * compress of the same moment share a hand-off. A task leaves
 * - when a lane reaches `batchTexts` inputs (at once, whatever else is running),
 * - else, when a thread is free, at the end of the current event-loop turn if no task left in the last
 *   `intervalMs`, or else `intervalMs` after the last one: at most one task per interval under load, none
 *   delayed when the pool was quiet. While every thread is busy the inputs keep gathering and leave
 *   together when a task comes back. Issue #13: every task costs both threads a wake-up (measured at
 *   2 000 msg/s: broker 0.61-0.66 cores with a task every 1 ms, 0.39 with one every 8 ms), and one
 *   piscina post per text was ~60 µs of the main thread per message.
 * Inputs buffered over all lanes are bounded (`maxBuffered`), and so is piscina's queue (`maxQueue`
 * tasks); either full is a BusyError. This is the only module that imports piscina.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { EncodedBody } from '../../workers/compression.js';
import type { PolicyResult, PolicySet } from '../../workers/content-policy.js';
import type { PiiResult } from '../../workers/pii.js';
import type {
  BatchResult,
  CompressResult,
  ScreenedText,
  ScreenTaskResult,
  SingleTask,
  TextResult,
  TextTask,
} from '../../workers/text-worker.js';
import { BusyError, SwitchboardError } from '../protocol/errors.js';

export type { EncodedBody, PiiResult, PolicyResult, PolicySet, ScreenedText };

export interface TextPoolOptions {
  threads: number;
  /** Batches waiting for a worker, at most. */
  maxQueue: number;
  /** Inputs per task, at most. */
  batchTexts: number;
  /**
   * Least time between two tasks leaving while inputs keep coming, ms (0 = every turn). An input that
   * finds no task sent in the last interval leaves at the end of the turn.
   */
  intervalMs: number;
  /** Inputs waiting in lanes over all ops, at most (default maxQueue × batchTexts). */
  maxBuffered?: number;
  /**
   * Threads start at the first task and stop after this long without one (default
   * DEFAULT_THREAD_IDLE_MS): an idle node keeps no isolate for them.
   */
  idleMs?: number;
  /**
   * `screen` also encodes each text it passes as it will be stored (ScreenedText.stored), in the same
   * task: the node sets it when its history is compressed, so the owner writing the message needs no
   * `compress` task of its own (default false).
   */
  storeScreened?: boolean;
}

export interface FilteredText {
  text: string;
  hits: string[];
}

export interface PoolStats {
  /** Inputs waiting in lanes for their batch to leave. */
  buffered: number;
  /** Batches waiting for a worker thread. */
  queuedBatches: number;
  /** Inputs answered, since start. */
  completed: number;
  /** Tasks (batches) answered, since start: completed / tasks is the mean batch size. */
  tasks: number;
  /** Inputs refused busy, since start. */
  rejected: number;
  /** Threads running now: 0 until the first task and again once they were idle for `idleMs`. */
  threads: number;
  /**
   * Bodies whose fast deflate did not inflate back to their text, since start; zlib's was stored instead
   * (workers/compression.ts). Anything but 0 is a bug in workers/dict-deflate.ts.
   */
  compressFallbacks: number;
}

export interface TextPool {
  /** Masks the default sensitive words. Rejects BusyError when a bound is full. */
  filter(text: string): Promise<FilteredText>;
  /** Applies a tenant's content policy (mask / block / review); workers recompile on a new version. */
  policy(tenant: string, policy: PolicySet, text: string): Promise<PolicyResult>;
  /** Finds and masks phone numbers, ID numbers, bank cards and e-mail addresses. */
  pii(text: string): Promise<PiiResult>;
  /**
   * A chat text on its way in, in one task: the tenant's policy (`undefined`: the default word list),
   * then PII masking of the result for the agents' view unless the verdict blocks it.
   */
  screen(tenant: string, policy: PolicySet | undefined, text: string): Promise<ScreenedText>;
  /** Encodes a body for storage (compressed when that saves bytes). */
  compress(text: string): Promise<EncodedBody>;
  /** Decodes a stored body. */
  decompress(body: EncodedBody): Promise<string>;
  stats(): PoolStats;
  close(): Promise<void>;
}

interface Pending<I, O> {
  input: I;
  resolve(out: O): void;
  reject(err: unknown): void;
}

interface Lane<I, O> {
  readonly key: string;
  items: Pending<I, O>[];
  task(inputs: I[]): SingleTask;
  results(out: TextResult): readonly O[];
}

/**
 * Pool threads load the (ESM) worker through import(), never require(): piscina tries require() first,
 * and Node 20's require of an ES module crashed a test process once in CI with a native assertion
 * (`CreateRequiredModuleFacade`). With require of ES modules off, piscina falls back to import().
 */
export const POOL_THREAD_EXEC_ARGV: readonly string[] = ['--no-experimental-require-module'];

const WORKER_FILE = fileURLToPath(new URL('../../workers/text-worker.js', import.meta.url));
const BUSY_RETRY_MS = 50;
const DEFAULT_THREAD_IDLE_MS = 60_000;

/** Checks the options with fixed messages; returns them frozen with maxBuffered filled in. */
export function parseTextPoolOptions(opts: TextPoolOptions): Readonly<Required<TextPoolOptions>> {
  for (const name of ['threads', 'maxQueue', 'batchTexts'] as const) {
    if (!Number.isSafeInteger(opts[name]) || opts[name] < 1) {
      throw new Error(`pool.${name} must be a positive integer`);
    }
  }
  if (!Number.isSafeInteger(opts.intervalMs) || opts.intervalMs < 0) {
    throw new Error('pool.intervalMs must be a non-negative integer');
  }
  const idleMs = opts.idleMs ?? DEFAULT_THREAD_IDLE_MS;
  if (!Number.isSafeInteger(idleMs) || idleMs < 1) throw new Error('pool.idleMs must be a positive integer');
  const maxBuffered = opts.maxBuffered ?? opts.maxQueue * opts.batchTexts;
  if (!Number.isSafeInteger(maxBuffered) || maxBuffered < 1) {
    throw new Error('pool.maxBuffered must be a positive integer');
  }
  return Object.freeze({ ...opts, maxBuffered, idleMs, storeScreened: opts.storeScreened === true });
}

export function createTextPool(options: TextPoolOptions): TextPool {
  const opts = parseTextPoolOptions(options);
  const piscina = new Piscina({
    filename: WORKER_FILE,
    // No thread until the first task (issue #14: an isolate per idle worker is ~9 MiB of RSS).
    minThreads: 0,
    maxThreads: opts.threads,
    execArgv: [...POOL_THREAD_EXEC_ARGV],
    maxQueue: opts.maxQueue,
    idleTimeout: opts.idleMs,
  });
  // biome-ignore lint/suspicious/noExplicitAny: lanes of different ops share one map
  const lanes = new Map<string, Lane<any, any>>();
  let buffered = 0;
  let completed = 0;
  let tasks = 0;
  let rejected = 0;
  let compressFallbacks = 0;
  let closed = false;
  const inFlight = new Set<Promise<unknown>>();
  // At most one of the two is set: the flush at the end of this turn, or the one after the interval.
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  let lastTaskAt = Number.NEGATIVE_INFINITY;
  // Without a listener an 'error' from a worker would crash the process; failed tasks already
  // reject their own promises, so there is nothing more to do here.
  piscina.on('error', () => {});

  const busy = () => new BusyError('worker pool queue', opts.maxQueue, BUSY_RETRY_MS);

  /** Sends every lane that holds inputs as one task (or refuses them all when piscina's queue is full). */
  function flushAll(): void {
    if (timer) clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
    timer = undefined;
    immediate = undefined;
    // biome-ignore lint/suspicious/noExplicitAny: lanes of different ops share one task
    const taken: { lane: Lane<any, any>; batch: Pending<any, any>[] }[] = [];
    for (const lane of lanes.values()) {
      if (lane.items.length > 0) taken.push({ lane, batch: lane.items });
      lane.items = [];
    }
    lanes.clear();
    if (taken.length === 0) return;
    const count = taken.reduce((a, t) => a + t.batch.length, 0);
    buffered -= count;
    if (piscina.queueSize >= opts.maxQueue) {
      rejected += count;
      const err = busy();
      for (const t of taken) for (const p of t.batch) p.reject(err);
      return;
    }
    const parts = taken.map((t) => t.lane.task(t.batch.map((p) => p.input)));
    const task: TextTask = parts.length === 1 ? (parts[0] as TextTask) : { op: 'batch', parts };
    const run: Promise<TextResult> = piscina.run(task);
    lastTaskAt = performance.now();
    inFlight.add(run);
    run
      .finally(() => {
        inFlight.delete(run);
        // What gathered while every thread was busy leaves now, together.
        if (buffered > 0 && !closed) schedule();
      })
      .catch(() => {});
    run.then(
      (out) => {
        completed += count;
        tasks++;
        const outs = parts.length === 1 ? [out] : (out as BatchResult).results;
        taken.forEach(({ lane, batch }, j) => {
          const part = outs[j];
          const results = part === undefined ? [] : lane.results(part);
          batch.forEach((p, i) => {
            if (i < results.length) p.resolve(results[i]);
            else p.reject(new Error('worker returned fewer results than inputs'));
          });
        });
      },
      (err: unknown) => {
        const full = String((err as Error)?.message ?? '').includes('limit');
        if (full) rejected += count;
        const e = full ? busy() : err;
        for (const t of taken) for (const p of t.batch) p.reject(e);
      },
    );
  }

  /**
   * When a thread is free: flushes at the end of this turn if the last task left an interval ago or more,
   * else once the interval since it has passed. While every thread is busy, a returning task flushes.
   */
  function schedule(): void {
    if (timer || immediate || buffered === 0) return;
    if (inFlight.size >= opts.threads) return;
    const wait = lastTaskAt + opts.intervalMs - performance.now();
    if (wait <= 0) immediate = setImmediate(flushAll);
    else timer = setTimeout(flushAll, Math.ceil(wait));
  }

  function submit<I, O>(
    key: string,
    input: I,
    task: (inputs: I[]) => SingleTask,
    results: (out: TextResult) => readonly O[],
  ): Promise<O> {
    if (closed) return Promise.reject(new SwitchboardError('unavailable', 'the worker pool is closed'));
    if (buffered >= opts.maxBuffered) {
      rejected++;
      return Promise.reject(busy());
    }
    return new Promise<O>((resolve, reject) => {
      let lane = lanes.get(key) as Lane<I, O> | undefined;
      if (lane === undefined) {
        lane = { key, items: [], task, results };
        lanes.set(key, lane);
      }
      lane.items.push({ input, resolve, reject });
      buffered++;
      if (lane.items.length >= opts.batchTexts) flushAll();
      else schedule();
    });
  }

  return {
    filter: (text) =>
      submit(
        'filter',
        text,
        (texts) => ({ op: 'filter', texts }),
        (out) => (out as { results: FilteredText[] }).results,
      ),
    policy: (tenant, policy, text) =>
      submit(
        // One lane per tenant and version: a task carries a single policy.
        `policy\u0000${tenant}\u0000${policy.version}`,
        text,
        (texts) => ({ op: 'policy', tenant, policy, texts }),
        (out) => (out as { results: PolicyResult[] }).results,
      ),
    pii: (text) =>
      submit(
        'pii',
        text,
        (texts) => ({ op: 'pii', texts }),
        (out) => (out as { results: PiiResult[] }).results,
      ),
    screen: (tenant, policy, text) =>
      submit(
        // With a policy, one lane per tenant and version, as for `policy`.
        policy === undefined ? 'screen' : `screen\u0000${tenant}\u0000${policy.version}`,
        text,
        (texts) => {
          const task =
            policy === undefined
              ? { op: 'screen' as const, texts }
              : { op: 'screen' as const, tenant, policy, texts };
          return opts.storeScreened ? { ...task, store: true } : task;
        },
        (out) => {
          const r = out as ScreenTaskResult;
          compressFallbacks += r.fallbacks ?? 0;
          return r.results;
        },
      ),
    compress: (text) =>
      submit(
        'compress',
        text,
        (texts) => ({ op: 'compress', texts }),
        (out) => {
          const r = out as CompressResult;
          compressFallbacks += r.fallbacks ?? 0;
          return r.items;
        },
      ),
    decompress: (body) =>
      submit(
        'decompress',
        body,
        (items) => ({ op: 'decompress', items }),
        (out) => (out as { texts: string[] }).texts,
      ),
    stats: () => ({
      buffered,
      queuedBatches: piscina.queueSize,
      completed,
      tasks,
      rejected,
      threads: piscina.threads.length,
      compressFallbacks,
    }),
    /** Sends what is buffered, lets every running batch finish, then stops the workers. */
    async close() {
      if (closed) return;
      closed = true;
      flushAll();
      await Promise.allSettled([...inFlight]);
      await piscina.close();
    },
  };
}
