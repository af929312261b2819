/**
 * The sweep: find the highest offered rate whose phase meets the latency objective. Rates grow
 * geometrically until a step fails, then the gap between the last good and the first bad rate is bisected
 * a few times. Pure logic (no I/O), so it is unit-tested on its own.
 */
import type { PhaseResult } from './load.js';
import { errorTotal } from './messages.js';

export interface Objective {
  /** Which latency the objective bounds: delivery (visitor → agent, end to end) or ack (sender → durable). */
  metric: 'delivery' | 'ack';
  p99Ms: number;
  /** At most this share of measured messages may fail (errors, lost, never sent). */
  maxFailedRatio: number;
  /** At least this share of the offered rate must be delivered. */
  minDeliveredRatio: number;
}

export const DEFAULT_OBJECTIVE: Objective = {
  metric: 'delivery',
  p99Ms: 89,
  maxFailedRatio: 0.001,
  minDeliveredRatio: 0.99,
};

export interface Verdict {
  met: boolean;
  reasons: string[];
}

/** Whether a phase met the objective, and if not, every reason why. */
export function judge(r: PhaseResult, o: Objective): Verdict {
  const reasons: string[] = [];
  const c = r.counts;
  const p99 = o.metric === 'delivery' ? r.delivery.p99Ms : r.ack.p99Ms;
  if (c.scheduled === 0) reasons.push('nothing was scheduled');
  if (p99 > o.p99Ms) reasons.push(`${o.metric} p99 ${p99.toFixed(1)} ms > ${o.p99Ms} ms`);
  const failed = errorTotal(c) + c.lostAck + c.notSent;
  if (c.scheduled > 0 && failed / c.scheduled > o.maxFailedRatio) {
    reasons.push(`${failed} of ${c.scheduled} messages failed (> ${(o.maxFailedRatio * 100).toFixed(2)} %)`);
  }
  if (c.scheduled > 0 && c.delivered / c.scheduled < o.minDeliveredRatio) {
    reasons.push(
      `delivered ${((c.delivered / c.scheduled) * 100).toFixed(1)} % of offered (< ${(o.minDeliveredRatio * 100).toFixed(0)} %)`,
    );
  }
  return { met: reasons.length === 0, reasons };
}

export interface SweepOptions {
  from: number;
  factor: number;
  max: number;
  /** Bisection steps after the first failure. */
  refine: number;
  /** Hard bound on the number of steps. */
  maxSteps: number;
}

/** Rounds to two significant digits (1234 → 1200), so step rates read well in a report. */
export function niceRate(r: number): number {
  if (r <= 0) return 0;
  const magnitude = 10 ** Math.max(0, Math.floor(Math.log10(r)) - 1);
  return Math.max(1, Math.round(r / magnitude) * magnitude);
}

export class SweepPlan {
  private good: number | undefined;
  private bad: number | undefined;
  private steps = 0;
  private refinements = 0;

  constructor(private readonly o: SweepOptions) {}

  /** The best rate that met the objective so far. */
  get best(): number | undefined {
    return this.good;
  }

  /** The next rate to try, or undefined when the sweep is over. */
  next(): number | undefined {
    if (this.steps >= this.o.maxSteps) return undefined;
    let rate: number;
    if (this.bad === undefined) {
      rate = this.good === undefined ? this.o.from : this.good * this.o.factor;
      if (this.good !== undefined && this.good >= this.o.max) return undefined;
      rate = Math.min(rate, this.o.max);
    } else {
      if (this.refinements >= this.o.refine) return undefined;
      // Nothing met yet: step down geometrically; otherwise bisect the gap.
      rate = this.good === undefined ? this.bad / this.o.factor : (this.good + this.bad) / 2;
      this.refinements++;
    }
    rate = niceRate(rate);
    if (rate === this.good || rate === this.bad) return undefined;
    this.steps++;
    return rate;
  }

  record(rate: number, met: boolean): void {
    if (met) this.good = Math.max(this.good ?? 0, rate);
    else this.bad = Math.min(this.bad ?? Number.POSITIVE_INFINITY, rate);
  }
}
