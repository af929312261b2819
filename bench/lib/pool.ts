/** Runs `fn` over `items` with at most `concurrency` calls in flight; resolves when all have settled. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/**
 * A queue that keeps refilling, with at most `limit` calls of `run` in flight: `pool` for work that arrives
 * while earlier work runs (the connections bench's reconnects). Items start in the order pushed; `run` must
 * not reject. The caller bounds what it pushes (the connections bench pushes each client at most once at a
 * time), and the queue's array holds at most twice what is still waiting.
 */
export class SlotQueue<T> {
  private readonly waiting: T[] = [];
  private head = 0;
  private running = 0;
  private stopped = false;

  constructor(
    private readonly limit: number,
    private readonly run: (item: T) => Promise<void>,
  ) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`SlotQueue limit must be ≥ 1, got ${limit}`);
  }

  /** Calls in flight. */
  get inFlight(): number {
    return this.running;
  }

  /** Items waiting for a slot. */
  get length(): number {
    return this.waiting.length - this.head;
  }

  push(item: T): void {
    if (this.stopped) return;
    this.waiting.push(item);
    this.startWaiting();
  }

  /** Drops what waits and starts nothing more; calls in flight finish. */
  stop(): void {
    this.stopped = true;
    this.waiting.length = 0;
    this.head = 0;
  }

  private startWaiting(): void {
    while (!this.stopped && this.running < this.limit && this.head < this.waiting.length) {
      const item = this.waiting[this.head++]!;
      // Drop the started entries once they are half the array, so a queue that never empties stays bounded.
      if (this.head * 2 >= this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      this.running++;
      void this.run(item).finally(() => {
        this.running--;
        this.startWaiting();
      });
    }
  }
}
