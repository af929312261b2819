/**
 * The batching writer behind HistoryStore.append: a bounded queue of rows, grouped into statements of
 * at most `maxBatchRows` rows from at most `maxBatchPartitions` partitions, with a bound on statements
 * executing at once. A conversation's actor writes one row at a time, so batching only within a
 * partition would make every message its own request; grouping across conversations is what cuts the
 * per-request cost (driver and Cassandra) under load. It knows nothing of the driver: a sink turns a
 * group of rows into one statement (single insert or batch).
 */
import { BusyError, OutcomeUnknownError, SwitchboardError } from '../protocol/errors.js';
import type { MessageRow } from './types.js';

/**
 * Writes a group of rows as one statement. Rows of one partition are adjacent and in append order;
 * a group spans at most maxBatchPartitions partitions.
 */
export interface HistorySink {
  write(rows: readonly MessageRow[]): Promise<void>;
}

export interface HistoryWriterOptions {
  /** Rows accepted and not yet written or failed; past it `append` rejects BusyError. */
  maxPendingRows: number;
  /** Statements executing at once. */
  maxInFlight: number;
  /** Rows per statement. */
  maxBatchRows: number;
  /**
   * Partitions per statement: 1 keeps every statement to one partition (one replica set, the usual
   * advice for large multi-node clusters); more groups rows of several conversations per request.
   */
  maxBatchPartitions: number;
  /** How long the first queued row waits for others to join its batch, in ms. */
  lingerMs: number;
  /** The partition a row belongs to; rows are grouped only when their keys are equal. */
  partitionOf: (row: MessageRow) => string;
  /** Tries per statement, at least 1: a retryable failure is repeated until this many were made. */
  maxAttempts: number;
  /** Wait before the first retry, ms; doubled before each further one. */
  retryBackoffMs: number;
  /** True when a failed write may be repeated (a timeout or an unavailable replica; the write is idempotent). */
  isRetryable: (err: unknown) => boolean;
  /**
   * True when a failure certainly wrote nothing (the store refused the statement before applying it,
   * e.g. not enough replicas alive). Any other failure leaves the outcome unknown: the write may land
   * later. Default: every failure is uncertain.
   */
  isCertainFailure?: (err: unknown) => boolean;
}

export interface HistoryWriterStats {
  /** Rows accepted and not yet settled (queued or executing). */
  pending: number;
  /** Statements executing now. */
  inFlight: number;
  /** Statements repeated after a retryable failure, since start. */
  retries: number;
  /** Rows whose write failed (the sender got an error, no ack), since start. */
  failed: number;
  /** Statements completed (written or failed), since start: rows / statements is the mean batch. */
  statements: number;
  /** Rows in those statements, since start. */
  rows: number;
}

export const DEFAULT_MAX_PENDING_ROWS = 10_000;
export const DEFAULT_MAX_IN_FLIGHT = 16;
export const DEFAULT_MAX_BATCH_ROWS = 32;
/**
 * 32 conversations per statement: Cassandra's CPU per message fell 0.43-0.46 → 0.38-0.39 cores at 2 000 msg/s
 * against 8 (BENCHMARKS.md, fourth session). Above Cassandra's default
 * unlogged_batch_across_partitions_warn_threshold (10): the stack's Cassandra raises it to 32; on another
 * cluster raise it too, or the coordinator logs a (rate-limited) warning.
 */
export const DEFAULT_MAX_BATCH_PARTITIONS = 32;
export const DEFAULT_LINGER_MS = 1;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_RETRY_BACKOFF_MS = 50;

/** The tunable part of HistoryWriterOptions, as users give it. */
export type WriterLimits = Pick<
  HistoryWriterOptions,
  | 'maxPendingRows'
  | 'maxInFlight'
  | 'maxBatchRows'
  | 'maxBatchPartitions'
  | 'lingerMs'
  | 'maxAttempts'
  | 'retryBackoffMs'
>;

/** Merges defaults and checks each limit; throws Error with a fixed message; returns a frozen object. */
export function parseWriterLimits(input: Partial<WriterLimits> = {}): Readonly<WriterLimits> {
  const limits: WriterLimits = {
    maxPendingRows: input.maxPendingRows ?? DEFAULT_MAX_PENDING_ROWS,
    maxInFlight: input.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
    maxBatchRows: input.maxBatchRows ?? DEFAULT_MAX_BATCH_ROWS,
    maxBatchPartitions: input.maxBatchPartitions ?? DEFAULT_MAX_BATCH_PARTITIONS,
    lingerMs: input.lingerMs ?? DEFAULT_LINGER_MS,
    maxAttempts: input.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    retryBackoffMs: input.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS,
  };
  for (const name of [
    'maxPendingRows',
    'maxInFlight',
    'maxBatchRows',
    'maxBatchPartitions',
    'maxAttempts',
  ] as const) {
    if (!Number.isSafeInteger(limits[name]) || limits[name] < 1) {
      throw new Error(`writer.${name} must be a positive integer`);
    }
  }
  if (!Number.isFinite(limits.lingerMs) || limits.lingerMs < 0) {
    throw new Error('writer.lingerMs must be a non-negative number');
  }
  if (!Number.isSafeInteger(limits.retryBackoffMs) || limits.retryBackoffMs < 0) {
    throw new Error('writer.retryBackoffMs must be a non-negative integer');
  }
  return Object.freeze(limits);
}

/** How long a client should wait before retrying a send whose write failed (store not answering). */
const UNKNOWN_RETRY_AFTER_MS = 1000;
/** How long a client should wait before retrying an append refused because the writer is full. */
const BUSY_RETRY_AFTER_MS = 50;
/**
 * Body bytes per batch. Cassandra fails batches over batch_size_fail_threshold (50 KiB by default), so a
 * group stops growing before that however many rows maxBatchRows allows; one row alone always goes.
 */
const MAX_BATCH_BODY_BYTES = 32 * 1024;

interface Entry {
  row: MessageRow;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class HistoryWriter {
  readonly #sink: HistorySink;
  readonly #options: HistoryWriterOptions;
  // Insertion-ordered: a partition that got a batch moves to the back, so one busy conversation cannot
  // starve the others.
  readonly #queues = new Map<string, Entry[]>();
  readonly #unsettled = new Set<Promise<void>>();
  #pending = 0;
  #inFlight = 0;
  #retries = 0;
  #failed = 0;
  #statements = 0;
  #rows = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(sink: HistorySink, options: HistoryWriterOptions) {
    this.#sink = sink;
    this.#options = options;
  }

  /**
   * Queues a row. Resolves when it is written; rejects at once with BusyError (code 'busy') when
   * maxPendingRows rows are pending (nothing was written). Later failures: OutcomeUnknownError when any
   * attempt may have been applied (a timeout, a lost connection: the row may still land), else
   * SwitchboardError 'unavailable' (every attempt was refused before it was applied).
   */
  append(row: MessageRow): Promise<void> {
    if (this.#closed) return Promise.reject(new SwitchboardError('internal', 'history writer is closed'));
    if (this.#pending >= this.#options.maxPendingRows) {
      return Promise.reject(
        new BusyError('history writer', this.#options.maxPendingRows, BUSY_RETRY_AFTER_MS),
      );
    }
    this.#pending++;
    const promise = new Promise<void>((resolve, reject) => {
      const key = this.#options.partitionOf(row);
      const entry: Entry = { row, resolve, reject };
      const queue = this.#queues.get(key);
      if (queue === undefined) this.#queues.set(key, [entry]);
      else queue.push(entry);
    });
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    this.#unsettled.add(settled);
    void settled.then(() => this.#unsettled.delete(settled));
    this.#schedule();
    return promise;
  }

  stats(): HistoryWriterStats {
    return {
      pending: this.#pending,
      inFlight: this.#inFlight,
      retries: this.#retries,
      failed: this.#failed,
      statements: this.#statements,
      rows: this.#rows,
    };
  }

  /** Resolves when every row accepted before the call is written or failed (never rejects). */
  async flush(): Promise<void> {
    this.#dispatch();
    await Promise.all([...this.#unsettled]);
  }

  /** Refuses new rows, then flushes what was accepted. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#dispatch();
    }, this.#options.lingerMs);
  }

  #dispatch(): void {
    while (this.#inFlight < this.#options.maxInFlight) {
      const group = this.#takeGroup();
      if (group === undefined) return;
      this.#inFlight++;
      void this.#write(group);
    }
  }

  /**
   * The next statement's rows: whole or partial queues of up to maxBatchPartitions partitions, oldest
   * partition first, until maxBatchRows rows or MAX_BATCH_BODY_BYTES of body. A partition that gave
   * rows moves to the back of the order, so one busy conversation cannot starve the others.
   */
  #takeGroup(): Entry[] | undefined {
    const group: Entry[] = [];
    let bytes = 0;
    let partitions = 0;
    const taken: [string, Entry[]][] = [];
    for (const [key, queue] of this.#queues) {
      if (partitions >= this.#options.maxBatchPartitions || group.length >= this.#options.maxBatchRows) break;
      let count = 0;
      for (const entry of queue) {
        if (group.length + count >= this.#options.maxBatchRows) break;
        const size = Buffer.byteLength(entry.row.body, 'utf8');
        if (group.length + count > 0 && bytes + size > MAX_BATCH_BODY_BYTES) break;
        bytes += size;
        count++;
      }
      if (count === 0) break;
      partitions++;
      for (const entry of queue.splice(0, count)) group.push(entry);
      taken.push([key, queue]);
      if (bytes >= MAX_BATCH_BODY_BYTES) break;
    }
    if (group.length === 0) return undefined;
    for (const [key, queue] of taken) {
      this.#queues.delete(key);
      if (queue.length > 0) this.#queues.set(key, queue);
    }
    return group;
  }

  async #write(group: Entry[]): Promise<void> {
    const rows = group.map((entry) => entry.row);
    let failure: unknown;
    let uncertain = false;
    let backoff = this.#options.retryBackoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#sink.write(rows);
        failure = undefined;
        break;
      } catch (err) {
        failure = err;
        if (this.#options.isCertainFailure?.(err) !== true) uncertain = true;
        // Safe to repeat: the same rows at the same write timestamp (their fence time), keyed by seq and
        // never updated; max_bucket only takes this value. The sender waits meanwhile and is not acked.
        if (attempt >= this.#options.maxAttempts || !this.#options.isRetryable(err)) break;
        this.#retries++;
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff *= 2;
      }
    }
    if (failure !== undefined) this.#failed += group.length;
    this.#statements++;
    this.#rows += group.length;
    this.#inFlight--;
    this.#pending -= group.length;
    const error =
      failure === undefined
        ? undefined
        : uncertain
          ? new OutcomeUnknownError('history write', UNKNOWN_RETRY_AFTER_MS, failure)
          : new SwitchboardError('unavailable', 'history write refused by the store', {
              cause: failure,
              retryAfterMs: UNKNOWN_RETRY_AFTER_MS,
            });
    for (const entry of group) {
      if (error === undefined) entry.resolve();
      else entry.reject(error);
    }
    this.#dispatch();
  }
}
