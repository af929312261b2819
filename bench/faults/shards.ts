/**
 * A watch on shard ownership as the brokers themselves report it (`/admin/shards`, every 500 ms): how many
 * shards two members list as held at the same moment (issue #12 saw 664 after a partition heal) and how
 * many have no holder at all (counted only when every member answered). A symptom to read next to the violations, not a verdict: the lists are
 * read one after another, so a handover can show as a brief overlap.
 */
import { SHARD_COUNT } from '../../src/routing/shard.js';
import type { BrokerNode } from './topology.js';

const POLL_MS = 500;
const REQUEST_TIMEOUT_MS = 400;

export interface ShardSample {
  at: number;
  /** Shards listed as held by two or more members that answered. */
  doubleHeld: number;
  /** Shards listed by no member; only when every member answered (else undefined). */
  unheld: number | undefined;
  /** Members that answered. */
  answered: number;
}

export interface ShardWindow {
  maxDoubleHeld: number;
  maxDoubleHeldAt: number | undefined;
  maxUnheld: number;
}

export class ShardWatch {
  readonly samples: ShardSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly brokers: readonly BrokerNode[],
    private readonly adminToken: string,
    private readonly now: () => number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const at = this.now();
      const lists = await Promise.all(
        this.brokers.map(async (b) => {
          try {
            const res = await fetch(`${b.httpBase}/admin/shards`, {
              headers: { authorization: `Bearer ${this.adminToken}` },
              signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
            });
            if (!res.ok) return undefined;
            return ((await res.json()) as { held?: number[] }).held;
          } catch {
            return undefined;
          }
        }),
      );
      const count = new Array<number>(SHARD_COUNT).fill(0);
      let answered = 0;
      for (const held of lists) {
        if (held === undefined) continue;
        answered++;
        for (const s of held) if (s >= 0 && s < SHARD_COUNT) count[s]!++;
      }
      if (answered === 0) return;
      this.samples.push({
        at,
        doubleHeld: count.filter((n) => n > 1).length,
        unheld: answered === this.brokers.length ? count.filter((n) => n === 0).length : undefined,
        answered,
      });
    } finally {
      this.busy = false;
    }
  }

  /** The worst of the samples in [fromMs, untilMs). */
  window(fromMs: number, untilMs: number): ShardWindow {
    let out: ShardWindow = { maxDoubleHeld: 0, maxDoubleHeldAt: undefined, maxUnheld: 0 };
    for (const s of this.samples) {
      if (s.at < fromMs || s.at >= untilMs) continue;
      if (s.doubleHeld > out.maxDoubleHeld)
        out = { ...out, maxDoubleHeld: s.doubleHeld, maxDoubleHeldAt: s.at };
      if (s.unheld !== undefined && s.unheld > out.maxUnheld) out = { ...out, maxUnheld: s.unheld };
    }
    return out;
  }
}
