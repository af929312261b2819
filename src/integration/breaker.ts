/**
 * A circuit breaker per dependency (a webhook endpoint, a context kind): after `failureThreshold`
 * failures in a row it opens and refuses calls for `openMs`; then it lets one probe through
 * (half-open): a success closes it, a failure opens it again. Time comes from the caller.
 */
export interface BreakerOptions {
  failureThreshold: number;
  openMs: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private state_: BreakerState = 'closed';
  private probing = false;

  constructor(private readonly opts: BreakerOptions) {}

  state(now: number): BreakerState {
    if (this.state_ === 'open' && now - this.openedAt >= this.opts.openMs) this.state_ = 'half-open';
    return this.state_;
  }

  /** True when a call may go ahead now. In half-open, only one call at a time (the probe). */
  allow(now: number): boolean {
    const s = this.state(now);
    if (s === 'closed') return true;
    if (s === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** When an open breaker lets a probe through, epoch ms (0 when closed). */
  retryAt(): number {
    return this.state_ === 'closed' ? 0 : this.openedAt + this.opts.openMs;
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
    this.state_ = 'closed';
  }

  failure(now: number): void {
    this.probing = false;
    this.failures++;
    if (this.state_ === 'half-open' || this.failures >= this.opts.failureThreshold) {
      this.state_ = 'open';
      this.openedAt = now;
    }
  }
}

/** Exponential backoff with full jitter: a delay in [base·2^(attempt-1) / 2, base·2^(attempt-1)], capped. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
