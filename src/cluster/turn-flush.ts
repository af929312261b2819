/**
 * One flush per event-loop turn for every outbox of a member: the member link's requests and replies
 * (src/routing/member-link.ts) and the delivery link's items (src/presence/link.ts). Each used to
 * schedule a `setImmediate` of its own, and Node runs the microtask queue between two immediates, so
 * nats.js (which writes what was published once the microtasks run) made one socket write per link
 * and turn. Flushed together, every NATS message of a turn leaves in one write, and the member at the
 * other end is woken once for all of them (issue #13: the cross-process hop is where two workers lost).
 *
 * `lingerMs` > 0 waits that long instead of to the end of the turn, so that the items of several turns
 * share one NATS message; 0 keeps every item's wait within the turn. 2 ms, measured on 2 workers
 * (BENCHMARKS.md, 2026-12-03 third session): writes to nats-server 1.05 -> 0.65 per chat message,
 * nats-server CPU -40 %, `e2e --sweep --workers 2` 1 100 -> 2 000 msg/s, delivery p50 +1.5 ms.
 * The default, 5 ms (as Kafka's producer `linger.ms` since 4.0), measured on three one-worker nodes
 * sharing 2 cores (BENCHMARKS.md, 2026-12-07 thirty-first session), where each member sees a third of
 * the messages and 2 ms left about one item per NATS message: fewer wake-ups of the members and of
 * nats-server, for at most 3 ms more per hop at low rates.
 */
export const DEFAULT_TURN_FLUSH_LINGER_MS = 5;

export class TurnFlush {
  readonly #flushers: Array<() => void> = [];
  readonly #lingerMs: number;
  #scheduled = false;
  readonly #run = (): void => {
    this.#scheduled = false;
    for (const f of this.#flushers) f();
  };

  constructor(lingerMs = DEFAULT_TURN_FLUSH_LINGER_MS) {
    if (!Number.isFinite(lingerMs) || lingerMs < 0) throw new Error('lingerMs must be a number ≥ 0');
    this.#lingerMs = lingerMs;
  }

  /** Adds an outbox's flush; it must send everything queued and not throw. */
  register(flush: () => void): void {
    this.#flushers.push(flush);
  }

  /** Asks for a flush of every registered outbox at the end of this turn (or after the linger). */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    if (this.#lingerMs > 0) setTimeout(this.#run, this.#lingerMs);
    else setImmediate(this.#run);
  }
}
