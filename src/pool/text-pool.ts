/**
 * The worker pool (piscina) and its micro-batcher: texts queue for at most `lingerMs` or until
 * `batchTexts` have gathered, then go to a worker as one task, so dispatch cost is paid once per
 * batch. Both the batcher's buffer and piscina's queue are bounded; a full one is a BusyError.
 * This is the only module that imports piscina.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { FilterResult, FilterTask } from '../../workers/text-worker.js';
import { BusyError, SwitchboardError } from '../protocol/errors.js';

export interface TextPoolOptions {
  threads: number;
  /** Batches waiting for a worker, at most. */
  maxQueue: number;
  batchTexts: number;
  lingerMs: number;
}

export interface FilteredText {
  text: string;
  hits: string[];
}

export interface TextPool {
  /** Masks sensitive words. Rejects BusyError when the pool's bounded queue is full. */
  filter(text: string): Promise<FilteredText>;
  stats(): { buffered: number; queuedBatches: number; completed: number };
  close(): Promise<void>;
}

interface Pending {
  text: string;
  resolve(r: FilteredText): void;
  reject(e: unknown): void;
}

const WORKER_FILE = fileURLToPath(new URL('../../workers/text-worker.js', import.meta.url));
const BUSY_RETRY_MS = 50;

export function createTextPool(opts: TextPoolOptions): TextPool {
  const piscina = new Piscina({
    filename: WORKER_FILE,
    minThreads: opts.threads,
    maxThreads: opts.threads,
    maxQueue: opts.maxQueue,
    idleTimeout: 60_000,
  });
  // Never holds more than batchTexts: reaching it flushes at once.
  let buffer: Pending[] = [];
  let timer: NodeJS.Timeout | undefined;
  let completed = 0;
  let closed = false;
  const inFlight = new Set<Promise<unknown>>();
  // Without a listener an 'error' from a worker would crash the process; failed tasks already
  // reject their own promises, so there is nothing more to do here.
  piscina.on('error', () => {});

  function flush(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return;
    const batch = buffer;
    buffer = [];
    if (piscina.queueSize >= opts.maxQueue) {
      const err = new BusyError('worker pool queue', opts.maxQueue, BUSY_RETRY_MS);
      for (const p of batch) p.reject(err);
      return;
    }
    const task: FilterTask = { op: 'filter', texts: batch.map((p) => p.text) };
    const run = piscina.run(task);
    inFlight.add(run);
    run.finally(() => inFlight.delete(run)).catch(() => {});
    run.then(
      (out: FilterResult) => {
        completed += batch.length;
        batch.forEach((p, i) => {
          const r = out.results[i];
          if (r) p.resolve({ text: r.text, hits: r.hits });
          else p.reject(new Error('worker returned fewer results than texts'));
        });
      },
      (err: unknown) => {
        const busy = String((err as Error)?.message ?? '').includes('limit');
        const e = busy ? new BusyError('worker pool queue', opts.maxQueue, BUSY_RETRY_MS) : err;
        for (const p of batch) p.reject(e);
      },
    );
  }

  return {
    filter(text) {
      if (closed) return Promise.reject(new SwitchboardError('unavailable', 'the worker pool is closed'));
      return new Promise<FilteredText>((resolve, reject) => {
        buffer.push({ text, resolve, reject });
        if (buffer.length >= opts.batchTexts) flush();
        else if (!timer) timer = setTimeout(flush, opts.lingerMs);
      });
    },
    stats: () => ({ buffered: buffer.length, queuedBatches: piscina.queueSize, completed }),
    /** Sends what is buffered, lets every running batch finish, then stops the workers. */
    async close() {
      if (closed) return;
      closed = true;
      flush();
      await Promise.allSettled([...inFlight]);
      await piscina.close();
    },
  };
}
