/**
 * A bound on the Cassandra requests one process has in flight, with a bounded wait in line behind it
 * (issue #14, the kill storm).
 *
 * cassandra-driver sends at most 2048 requests at once on a connection (one connection per host by
 * default) and fails the rest at once: `BusyConnectionError` inside a `NoHostAvailableError`, which
 * formats every inner error with its stack. A restarted owner under 100k sockets loaded thousands of
 * conversations at once: in 33 s of its main thread's profile, 12.1 s of CPU, of which 9.2 s was garbage
 * collection and 3.8 s the driver's errors (1.8 s formatting them), and the clients it answered
 * `unavailable` came back for more (BENCHMARKS.md, thirty-third session).
 *
 * So every request of the stores, except the history writer's batches (bounded on their own:
 * SB_WRITER_MAX_IN_FLIGHT), goes through this gate: at most `maxInFlight` at the driver, the rest
 * waiting in line in arrival order, at most `maxWaiting` of them. At that bound a request is refused
 * at once, and so is one whose turn comes after `maxWaitMs` (its caller's deadline has passed): both
 * with `unavailable` and a retry delay, as a store outage is, without touching the driver.
 */
import type cassandra from 'cassandra-driver';
import { SwitchboardError } from '../protocol/errors.js';
import { STORE_RETRY_AFTER_MS } from './store-errors.js';

/**
 * Store requests one process has at the driver at once: the driver's own limit (2048 on its one
 * connection per host) less the writer's 16 statements and a margin. The gate changes nothing below
 * what the driver takes; above, a request waits its turn instead of failing.
 */
export const DEFAULT_STORE_REQUESTS_IN_FLIGHT = 2000;
/** Store requests waiting for a turn, at most; more are refused `unavailable`. */
export const DEFAULT_STORE_REQUESTS_WAITING = 8192;

/** What the stores need of the driver's client: statements and batches, promise forms. */
export interface CqlClient {
  execute(
    query: string,
    params?: unknown[],
    options?: cassandra.QueryOptions,
  ): Promise<cassandra.types.ResultSet>;
  batch(
    queries: Array<string | { query: string; params?: unknown[] }>,
    options?: cassandra.QueryOptions,
  ): Promise<cassandra.types.ResultSet>;
}

export interface RequestGateStats {
  inFlight: number;
  waiting: number;
  /** Refused since start: the line full, or the turn came after maxWaitMs. */
  refusedFull: number;
  refusedLate: number;
}

interface Waiter {
  start(): void;
  refuse(err: SwitchboardError): void;
  at: number;
}

export class RequestGate {
  #inFlight = 0;
  // A FIFO: an array read from `#head`, compacted once half of it has been read.
  #line: Waiter[] = [];
  #head = 0;
  #refusedFull = 0;
  #refusedLate = 0;

  constructor(
    private readonly maxInFlight: number,
    private readonly maxWaiting: number,
    private readonly maxWaitMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) throw new Error('maxInFlight must be ≥ 1');
    if (!Number.isSafeInteger(maxWaiting) || maxWaiting < 0) throw new Error('maxWaiting must be ≥ 0');
  }

  /** Runs `fn` now if fewer than maxInFlight run, else when its turn comes; refuses when the line is full. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#inFlight < this.maxInFlight) return this.#start(fn);
    if (this.#line.length - this.#head >= this.maxWaiting) {
      this.#refusedFull++;
      return Promise.reject(
        new SwitchboardError(
          'unavailable',
          `history store busy: ${this.maxWaiting} requests waiting; retry later`,
          { retryAfterMs: STORE_RETRY_AFTER_MS },
        ),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.#line.push({
        start: () => this.#start(fn).then(resolve, reject),
        refuse: reject,
        at: this.now(),
      });
    });
  }

  stats(): RequestGateStats {
    return {
      inFlight: this.#inFlight,
      waiting: this.#line.length - this.#head,
      refusedFull: this.#refusedFull,
      refusedLate: this.#refusedLate,
    };
  }

  #start<T>(fn: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    let p: Promise<T>;
    try {
      p = fn();
    } catch (err) {
      p = Promise.reject(err);
    }
    return p.finally(() => {
      this.#inFlight--;
      this.#next();
    });
  }

  #next(): void {
    while (this.#inFlight < this.maxInFlight && this.#head < this.#line.length) {
      const w = this.#line[this.#head]!;
      this.#line[this.#head] = undefined as unknown as Waiter;
      this.#head++;
      if (this.now() - w.at > this.maxWaitMs) {
        this.#refusedLate++;
        w.refuse(
          new SwitchboardError(
            'unavailable',
            `history store busy: waited over ${this.maxWaitMs} ms; retry later`,
            {
              retryAfterMs: STORE_RETRY_AFTER_MS,
            },
          ),
        );
        continue;
      }
      w.start();
    }
    if (this.#head > 1024 && this.#head * 2 > this.#line.length) {
      this.#line = this.#line.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** `client`'s statements and batches through `gate`. */
export function gatedClient(client: CqlClient, gate: RequestGate): CqlClient {
  return {
    execute: (query, params, options) => gate.run(() => client.execute(query, params, options)),
    batch: (queries, options) => gate.run(() => client.batch(queries, options)),
  };
}
