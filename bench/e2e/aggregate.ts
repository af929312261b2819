/**
 * Folds what the generators report during one phase into a PhaseResult: per-second points (merged once
 * every generator has reported that second, then only the summary is kept — a histogram is ~90 KB) and
 * the measured window's totals.
 */
import {
  addEncoded,
  type Histogram,
  type LatencySummary,
  newHistogram,
  summarize,
} from '../lib/histogram.js';
import { addCounts, type Counts, type E2ePhaseDone, type E2eTick, emptyCounts } from './messages.js';

export interface SecondPoint {
  /** Seconds since the phase's start (the warm-up included). */
  t: number;
  measured: boolean;
  counts: Counts;
  ack: LatencySummary;
  delivery: LatencySummary;
  maxSendLagMs: number;
  /** Busiest generator's event-loop utilisation in this second. */
  maxGeneratorElu: number;
}

export interface PhaseResult {
  phase: number;
  offeredRate: number;
  startAt: number;
  endAt: number;
  warmupMs: number;
  /** The measured window as run (shorter than asked when ended early). */
  measuredMs: number;
  counts: Counts;
  ack: LatencySummary;
  delivery: LatencySummary;
  /** How late the generators sent measured messages behind their schedule. */
  sendLag: LatencySummary;
  /** Mean event-loop utilisation of each generator over the measured window. */
  generatorElu: number[];
  series: SecondPoint[];
}

interface SecondAgg {
  reports: number;
  counts: Counts;
  ack: Histogram;
  delivery: Histogram;
  maxSendLagMs: number;
  maxElu: number;
  measured: boolean;
}

export class PhaseAggregator {
  private readonly open = new Map<number, SecondAgg>();
  private readonly complete = new Map<number, SecondPoint>();
  private readonly counts = emptyCounts();
  private readonly ack = newHistogram();
  private readonly delivery = newHistogram();
  private readonly sendLag = newHistogram();
  private readonly elus: number[] = [];

  constructor(
    private readonly generators: number,
    private readonly warmupMs: number,
    private readonly durationMs: number,
  ) {}

  /** Adds one generator's second; returns the merged point once every generator has reported it. */
  tick(m: E2eTick): SecondPoint | undefined {
    let s = this.open.get(m.second);
    if (!s) {
      s = {
        reports: 0,
        counts: emptyCounts(),
        ack: newHistogram(),
        delivery: newHistogram(),
        maxSendLagMs: 0,
        maxElu: 0,
        measured: (m.second + 1) * 1000 > this.warmupMs && m.second * 1000 < this.warmupMs + this.durationMs,
      };
      this.open.set(m.second, s);
    }
    s.reports++;
    addCounts(s.counts, m.counts);
    addEncoded(s.ack, m.ack);
    addEncoded(s.delivery, m.delivery);
    s.maxSendLagMs = Math.max(s.maxSendLagMs, m.maxSendLagMs);
    s.maxElu = Math.max(s.maxElu, m.elu);
    if (s.reports < this.generators) return undefined;
    const point = toPoint(m.second, s);
    this.complete.set(m.second, point);
    this.open.delete(m.second);
    return point;
  }

  done(m: E2ePhaseDone): void {
    addCounts(this.counts, m.counts);
    addEncoded(this.ack, m.ack);
    addEncoded(this.delivery, m.delivery);
    addEncoded(this.sendLag, m.sendLag);
    this.elus[m.generator] = m.elu;
  }

  result(phase: number, rate: number, startAt: number): PhaseResult {
    // Seconds not every generator reported (one ended early) are summarised as they are.
    const partial = [...this.open.entries()].map(([t, s]) => toPoint(t, s));
    return {
      phase,
      offeredRate: rate,
      startAt,
      endAt: Date.now(),
      warmupMs: this.warmupMs,
      // The schedule is exact, so the measured window as run is what was scheduled in it.
      measuredMs: (this.counts.scheduled / rate) * 1000,
      counts: this.counts,
      ack: summarize(this.ack),
      delivery: summarize(this.delivery),
      sendLag: summarize(this.sendLag),
      generatorElu: this.elus,
      series: [...this.complete.values(), ...partial].sort((a, b) => a.t - b.t),
    };
  }
}

function toPoint(t: number, s: SecondAgg): SecondPoint {
  return {
    t,
    measured: s.measured,
    counts: s.counts,
    ack: summarize(s.ack),
    delivery: summarize(s.delivery),
    maxSendLagMs: s.maxSendLagMs,
    maxGeneratorElu: s.maxElu,
  };
}
