/**
 * The delivery link: one-way items from this member to another, coalesced per destination and
 * event-loop turn into one NATS message on the destination's delivery inbox
 * (`<root>.deliver.<member>`), like the member link does for requests (src/routing/member-link.ts).
 * Presence announcements, snapshots and pushed frames travel here. Items to one member arrive in the
 * order they were sent (one list per destination, one publishing connection, one subscription), which
 * the presence protocol relies on: a snapshot and a later leave of the same user are applied in order.
 *
 * Fire and forget, at most once: an item whose member is gone is lost (a push is then recovered by
 * `sync`; a join is retried by its sender until answered). Bounds: a batch leaves at once when it
 * holds `maxBatch` items or `maxBatchBytes` bytes of payload, so nothing waits beyond one turn and no
 * NATS message outgrows the server's payload limit.
 */
import type { Transport, TransportSubscription } from '../cluster/transport.js';
import { TurnFlush } from '../cluster/turn-flush.js';
import { msgpackDecodePeer, msgpackEncode } from '../protocol/codec.js';

export const DEFAULT_DELIVERY_MAX_BATCH = 512;
/** Far below nats-server's default 1 MiB max_payload, even with one large frame on top. */
export const DEFAULT_DELIVERY_MAX_BATCH_BYTES = 256 * 1024;

interface Envelope<I> {
  f: string;
  i: I[];
}

export interface DeliveryLinkStats {
  /** NATS messages sent, and the items in them (items / batches = coalescing). */
  batches: number;
  items: number;
}

interface Outbox<I> {
  items: I[];
  bytes: number;
}

export class DeliveryLink<I> {
  readonly #transport: Transport;
  readonly #self: string;
  readonly #subjectOf: (member: string) => string;
  readonly #onItems: (from: string, items: readonly I[]) => void;
  readonly #maxBatch: number;
  readonly #maxBatchBytes: number;
  readonly #outboxes = new Map<string, Outbox<I>>();
  #sub: TransportSubscription | undefined;
  readonly #flush: TurnFlush;
  #stopped = false;
  readonly #stats: DeliveryLinkStats = { batches: 0, items: 0 };

  constructor(opts: {
    transport: Transport;
    self: string;
    subjectOf: (member: string) => string;
    /** Items that arrived from `from`, in the order it sent them. Must not throw. */
    onItems: (from: string, items: readonly I[]) => void;
    maxBatch?: number;
    maxBatchBytes?: number;
    /** Shared with the member's other outboxes, so that a turn's NATS messages leave in one write. */
    flush?: TurnFlush;
  }) {
    this.#transport = opts.transport;
    this.#self = opts.self;
    this.#subjectOf = opts.subjectOf;
    this.#onItems = opts.onItems;
    this.#maxBatch = opts.maxBatch ?? DEFAULT_DELIVERY_MAX_BATCH;
    this.#maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_DELIVERY_MAX_BATCH_BYTES;
    if (!Number.isSafeInteger(this.#maxBatch) || this.#maxBatch < 1)
      throw new Error('delivery.maxBatch must be a positive integer');
    if (!Number.isSafeInteger(this.#maxBatchBytes) || this.#maxBatchBytes < 1)
      throw new Error('delivery.maxBatchBytes must be a positive integer');
    this.#flush = opts.flush ?? new TurnFlush(0); // alone: at the end of each turn
    this.#flush.register(() => this.#flushAll());
  }

  /** Subscribes to this member's delivery inbox; resolves once NATS has the subscription. */
  async start(): Promise<void> {
    this.#sub = this.#transport.subscribe(this.#subjectOf(this.#self), (m) => this.#receive(m.data));
    await this.#transport.flush();
  }

  /** Sends what is queued and unsubscribes; later items are dropped. */
  stop(): void {
    this.#flushAll();
    this.#stopped = true;
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }

  stats(): DeliveryLinkStats {
    return { ...this.#stats };
  }

  /** Queues `item` for `member`; `bytes` is its payload's size, for the batch bound. */
  send(member: string, item: I, bytes = 0): void {
    if (this.#stopped) return;
    let box = this.#outboxes.get(member);
    if (box === undefined) {
      box = { items: [], bytes: 0 };
      this.#outboxes.set(member, box);
    }
    box.items.push(item);
    box.bytes += bytes;
    if (box.items.length >= this.#maxBatch || box.bytes >= this.#maxBatchBytes) this.#flushOne(member);
    else this.#flush.schedule();
  }

  #flushAll(): void {
    for (const member of [...this.#outboxes.keys()]) this.#flushOne(member);
  }

  #flushOne(member: string): void {
    const box = this.#outboxes.get(member);
    this.#outboxes.delete(member);
    if (box === undefined || box.items.length === 0) return;
    this.#stats.batches++;
    this.#stats.items += box.items.length;
    const envelope: Envelope<I> = { f: this.#self, i: box.items };
    try {
      this.#transport.publish(this.#subjectOf(member), msgpackEncode(envelope));
    } catch {
      // A closed or failed connection: at most once, like any loss in flight (pushes: sync; joins: retried).
    }
  }

  #receive(data: Uint8Array): void {
    let env: Envelope<I>;
    try {
      env = msgpackDecodePeer(data) as Envelope<I>;
    } catch {
      return; // not ours: a push is recovered by sync, a join is retried
    }
    if (env === null || typeof env !== 'object' || typeof env.f !== 'string' || !Array.isArray(env.i)) return;
    this.#onItems(env.f, env.i);
  }
}
