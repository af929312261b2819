/**
 * The cell that hosts one conversation actor: its bounded mailbox, lazy activation (state loaded
 * from the store on first use) and one-at-a-time processing. Failures become error replies; they
 * never escape the mailbox. A failed activation leaves the cell unloaded so the next message retries.
 */
import {
  type Ack,
  type ConversationContext,
  type ConversationMessage,
  type ConversationState,
  conversationBehaviour,
  initialState,
} from '../../actors/conversation.js';
import { SwitchboardError, toSwitchboardError } from '../protocol/errors.js';
import type { HistoryStore } from '../store/types.js';
import { Mailbox } from './mailbox.js';

interface Envelope {
  msg: ConversationMessage;
  resolve(ack: Ack): void;
  reject(err: unknown): void;
}

export class ActorCell {
  private state: ConversationState | undefined;
  private readonly ctx: ConversationContext;
  private readonly mailbox: Mailbox<Envelope>;
  lastActiveAt: number;

  constructor(
    readonly tenant: string,
    readonly conv: string,
    readonly shard: number,
    mailboxCapacity: number,
    private readonly store: Pick<HistoryStore, 'loadSnapshot'>,
    sharedCtx: Omit<ConversationContext, 'fence'>,
    holds: (shard: number) => boolean,
    private readonly recentLimit: number,
  ) {
    const clock = sharedCtx.clock;
    this.ctx = {
      ...sharedCtx,
      fence: () => {
        if (!holds(shard)) {
          throw new SwitchboardError('unavailable', `shard ${shard} is no longer owned here`, {
            retryAfterMs: 100,
          });
        }
        return clock.now();
      },
    };
    this.lastActiveAt = clock.now();
    this.mailbox = new Mailbox(`actor mailbox of ${tenant}/${conv}`, mailboxCapacity, (e) => this.process(e));
  }

  /** True while a message is queued or being processed (the cell must not be passivated then). */
  get busy(): boolean {
    return this.mailbox.busy;
  }

  get depth(): number {
    return this.mailbox.size;
  }

  /** Queues a message; resolves with the ack, rejects with a SwitchboardError (busy when full). */
  ask(msg: ConversationMessage): Promise<Ack> {
    return new Promise<Ack>((resolve, reject) => {
      this.mailbox.offer({ msg, resolve, reject });
      this.lastActiveAt = this.ctx.clock.now();
    });
  }

  private async process(e: Envelope): Promise<void> {
    try {
      if (!this.state) {
        const snap = await this.store.loadSnapshot(this.tenant, this.conv, this.recentLimit);
        this.state = initialState(this.tenant, this.conv, snap, this.recentLimit);
      }
      e.resolve(await conversationBehaviour(this.state, e.msg, this.ctx));
    } catch (err) {
      e.reject(toSwitchboardError(err));
    } finally {
      this.lastActiveAt = this.ctx.clock.now();
    }
  }
}
