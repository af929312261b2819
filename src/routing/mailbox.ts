/**
 * A bounded FIFO drained by one consumer at a time. `offer` never blocks and never grows the
 * queue past its capacity: a full mailbox is a BusyError the caller turns into a `busy` reply.
 */
import { BusyError } from '../protocol/errors.js';

export const BUSY_RETRY_AFTER_MS = 100;

export class Mailbox<T> {
  private items: T[] = [];
  private head = 0;
  private draining = false;

  constructor(
    readonly name: string,
    readonly capacity: number,
    private readonly consume: (item: T) => Promise<void>,
  ) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new Error('capacity must be a positive integer');
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Whether the consumer is running or items wait. */
  get busy(): boolean {
    return this.draining || this.size > 0;
  }

  /** Enqueues and starts draining; throws BusyError when full. */
  offer(item: T): void {
    if (this.size >= this.capacity) throw new BusyError(this.name, this.capacity, BUSY_RETRY_AFTER_MS);
    this.items.push(item);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.head < this.items.length) {
        const item = this.items[this.head] as T;
        this.items[this.head] = undefined as T;
        this.head++;
        // consume() owns its errors (it replies to its caller); a throw here must not stop the drain.
        await Promise.resolve()
          .then(() => this.consume(item))
          .catch(() => {});
      }
    } finally {
      this.items = [];
      this.head = 0;
      this.draining = false;
    }
  }
}
