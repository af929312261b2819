/**
 * The cell that hosts one actor (a conversation, a tenant queue, an agent): its bounded mailbox,
 * lazy activation (state loaded from the store on first use) and one-at-a-time processing.
 * Failures become error replies; they never escape the mailbox. A failed activation leaves the
 * cell unloaded so the next message retries.
 */
import type { Clock } from '../clock.js';
import { SwitchboardError, toSwitchboardError } from '../protocol/errors.js';
import { type TraceContext, traceContext, traced } from '../telemetry/tracing.js';
import type { ActorBehaviour } from './actor-kind.js';
import { Mailbox } from './mailbox.js';

interface Envelope {
  msg: unknown;
  /** Epoch ms after which the caller no longer waits: the message is then answered without running. */
  deadline: number | undefined;
  resolve(reply: unknown): void;
  reject(err: unknown): void;
  /** trace: the sender's span; the mailbox's drain loop does not carry it (undefined when off). */
  trace: TraceContext | undefined;
}

export class ActorCell {
  private state: unknown;
  private loaded = false;
  private readonly fence: () => number;
  private readonly mailbox: Mailbox<Envelope>;
  lastActiveAt: number;

  constructor(
    readonly tenant: string,
    readonly id: string,
    readonly shard: number,
    mailboxCapacity: number,
    private readonly behaviour: ActorBehaviour,
    private readonly clock: Clock,
    holds: (shard: number) => boolean,
    /** The acquisition of the shard this cell belongs to (ShardRouters). */
    readonly epoch = 0,
  ) {
    this.fence = () => {
      if (!holds(shard)) {
        throw new SwitchboardError('unavailable', `shard ${shard} is no longer owned here`, {
          retryAfterMs: 100,
        });
      }
      return clock.now();
    };
    this.lastActiveAt = clock.now();
    this.mailbox = new Mailbox(`actor mailbox of ${tenant}/${printable(id)}`, mailboxCapacity, (e) =>
      traced('sb.actor', tenant, id, processIn, this, e, e.trace),
    );
  }

  /** True while a message is queued or being processed (the cell must not be passivated then). */
  get busy(): boolean {
    return this.mailbox.busy;
  }

  get depth(): number {
    return this.mailbox.size;
  }

  /**
   * Queues a message; resolves with the reply, rejects with a SwitchboardError (busy when full).
   * With a `deadline` (epoch ms, the cell's clock), a message still queued at that time is rejected
   * `timeout` without being processed: its caller has stopped waiting, and doing its work anyway is
   * how a backlog outlives the overload that made it (every later message then waits behind work
   * nobody wants). Skipping is safe because callers retry with the same cmid or key.
   */
  ask(msg: unknown, deadline?: number): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      this.mailbox.offer({ msg, deadline, resolve, reject, trace: traceContext() });
      this.lastActiveAt = this.clock.now();
    });
  }

  /** Called when the cell is dropped (passivation, eviction, shard release). */
  passivated(): void {
    if (this.loaded) this.behaviour.passivate?.(this.state);
  }

  /** @internal Runs one envelope (the mailbox's consumer, through the trace hook). */
  async process(e: Envelope): Promise<void> {
    if (e.deadline !== undefined && this.clock.now() > e.deadline) {
      e.reject(new SwitchboardError('timeout', 'the request waited past its deadline and was not processed'));
      return;
    }
    try {
      if (!this.loaded) {
        this.state = await this.behaviour.load(this.tenant, this.id, this.fence);
        this.loaded = true;
      }
      e.resolve(await this.behaviour.receive(this.state, e.msg, this.fence));
    } catch (err) {
      e.reject(toSwitchboardError(err));
    } finally {
      this.lastActiveAt = this.clock.now();
    }
  }
}

const processIn = (cell: ActorCell, e: Envelope): Promise<void> => cell.process(e);

/** Internal actor ids carry control characters as separators; logs and errors show them as '/'. */
export function printable(id: string): string {
  return id.replace(/[\u0000-\u001f]/g, '/');
}
