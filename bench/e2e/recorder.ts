/**
 * What a generator records: per second (by arrival, for the over-time charts) and per phase (only messages
 * scheduled in the measured window, for the totals). Latency is always taken from the message's scheduled
 * send time, not from when the generator got round to sending it: that is what keeps an open-loop bench
 * honest about coordinated omission (a stalled broker or generator shows up as latency, not as fewer samples).
 */
import { encodeHistogram, type Histogram, newHistogram, recordMs } from '../lib/histogram.js';
import { type Counts, emptyCounts } from './messages.js';

export interface Window {
  counts: Counts;
  ack: Histogram;
  delivery: Histogram;
}

function newWindow(): Window {
  return { counts: emptyCounts(), ack: newHistogram(), delivery: newHistogram() };
}

export class Recorder {
  tick: Window = newWindow();
  phase: Window = newWindow();
  sendLag: Histogram = newHistogram();
  maxSendLagMs = 0;
  private tickElus: number[] = [];

  /** Counts an event in the current second and, when `measured`, in the phase totals. */
  count(field: Exclude<keyof Counts, 'errors'>, measured: boolean): void {
    this.tick.counts[field]++;
    if (measured) this.phase.counts[field]++;
  }

  error(code: string, measured: boolean): void {
    this.tick.counts.errors[code] = (this.tick.counts.errors[code] ?? 0) + 1;
    if (measured) this.phase.counts.errors[code] = (this.phase.counts.errors[code] ?? 0) + 1;
  }

  ack(latencyMs: number, measured: boolean): void {
    this.count('acked', measured);
    recordMs(this.tick.ack, latencyMs);
    if (measured) recordMs(this.phase.ack, latencyMs);
  }

  delivery(latencyMs: number, measured: boolean): void {
    this.count('delivered', measured);
    recordMs(this.tick.delivery, latencyMs);
    if (measured) recordMs(this.phase.delivery, latencyMs);
  }

  sent(lagMs: number, measured: boolean): void {
    this.count('sent', measured);
    if (lagMs > this.maxSendLagMs) this.maxSendLagMs = lagMs;
    if (measured) recordMs(this.sendLag, Math.max(0, lagMs));
  }

  /** Ends the current second: returns its figures and starts the next. */
  takeTick(
    elu: number,
    measured: boolean,
  ): { counts: Counts; ack: string; delivery: string; maxSendLagMs: number } {
    const t = this.tick;
    const out = {
      counts: t.counts,
      ack: encodeHistogram(t.ack),
      delivery: encodeHistogram(t.delivery),
      maxSendLagMs: this.maxSendLagMs,
    };
    t.ack.destroy();
    t.delivery.destroy();
    this.tick = newWindow();
    this.maxSendLagMs = 0;
    if (measured) this.tickElus.push(elu);
    return out;
  }

  /** Ends the phase: returns its totals and resets everything for the next one. */
  takePhase(): { counts: Counts; ack: string; delivery: string; sendLag: string; elu: number } {
    const p = this.phase;
    const elus = this.tickElus;
    const out = {
      counts: p.counts,
      ack: encodeHistogram(p.ack),
      delivery: encodeHistogram(p.delivery),
      sendLag: encodeHistogram(this.sendLag),
      elu: elus.length === 0 ? 0 : elus.reduce((a, b) => a + b, 0) / elus.length,
    };
    p.ack.destroy();
    p.delivery.destroy();
    this.sendLag.destroy();
    this.phase = newWindow();
    this.sendLag = newHistogram();
    this.tickElus = [];
    return out;
  }
}
