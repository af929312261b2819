/**
 * The support desk outside the actors (issue #17 items 6 and 7): what happens after the tenant's
 * queue actor routed a conversation (actors/reception/queue-reception.ts `admit`), and the visitor's desk
 * frames. Stateless, on every node; every decision stays with the actors.
 *
 * - `closed`: the automatic message (a `system` message, once per local day and conversation) and a
 *   `desk_closed` frame carrying the leave-a-message form to the visitor.
 * - `bot`: the visitor's message goes to the tenant's bot by NATS request-reply
 *   (`sb.biz.<tenant>.bot`, docs/INTEGRATION.md "Bot first"); the answer is posted as role `bot`. A
 *   hand-off, a visitor asking for a person, or a bot that fails (no responders, timeout, an answer that
 *   is unreadable or too long) hands the conversation to the queue: the visitor is never left alone.
 * - `leave`: a left message is stored by the queue actor (bounded per tenant) and written into the
 *   conversation as the visitor's own message, so the agent who gets it at opening time reads it there.
 */
import type { Ack, ConversationView, CreateReply } from '../../actors/conversation.js';
import type { EnqueueReply, QueueMessage } from '../../actors/queue.js';
import type { ActorAsker } from '../chat/service.js';
import type { Clock } from '../clock.js';
import type { ClusterNames } from '../cluster/names.js';
import type { Transport } from '../cluster/transport.js';
import { decodeEventPayload } from '../integration/event-codec.js';
import { SwitchboardError, toSwitchboardError } from '../protocol/errors.js';
import { deskClosedFrame } from '../protocol/reception-frames.js';
import { QUEUE_ACTOR_ID } from '../routing/actor-kind.js';
import type { LeftMessageRow } from '../store/reception-store.js';
import { localTime } from './hours.js';
import { MAX_BOT_REPLY_BYTES, MAX_BOT_SUMMARY_CHARS, type ReceptionSettings } from './settings.js';

/** The sender id of the desk's own system messages (the automatic closed-hours message). */
export const RECEPTION_SENDER = 'desk';

/** What ChatService tells the desk after the queue routed a conversation. */
export interface ReceptionHooks {
  /** `message`: the visitor message that asked (forwarded to the bot on route `bot`). */
  routed(tenant: string, reply: EnqueueReply, visitor: string, message?: { seq: number; body: string }): void;
}

export interface ReceptionDeps {
  actors: ActorAsker;
  transport: Pick<Transport, 'request'>;
  names: Pick<ClusterNames, 'bizTenantSubject'>;
  settings(tenant: string): ReceptionSettings;
  clock: Clock;
  postMessage(
    tenant: string,
    conv: string,
    req: { from: string; role: 'system' | 'bot'; cmid: string; body: string },
  ): Promise<Ack>;
  notify(tenant: string, users: readonly string[], frame: Record<string, unknown>): void;
  warn(obj: object, msg: string): void;
}

/** A bot's answer, checked. */
export interface BotAnswer {
  reply: string | null;
  handoff: boolean;
  summary: string | null;
}

/**
 * Reads a bot's NATS reply; throws Error naming what is wrong (the caller falls back to the queue).
 * `kind`: the answer to a `message` needs a reply or a hand-off; to a `handoff`, a summary is enough.
 */
export function parseBotAnswer(
  bytes: Uint8Array,
  maxReplyChars: number,
  kind: 'message' | 'handoff' = 'message',
): BotAnswer {
  const o = decodeEventPayload(bytes, MAX_BOT_REPLY_BYTES);
  const reply = o['reply'];
  const summary = o['summary'];
  if (reply !== undefined && reply !== null && (typeof reply !== 'string' || reply.trim() === ''))
    throw new Error('reply must be a non-blank string');
  if (typeof reply === 'string' && reply.length > maxReplyChars)
    throw new Error(`reply is ${reply.length} characters, more than ${maxReplyChars}`);
  if (summary !== undefined && summary !== null && typeof summary !== 'string')
    throw new Error('summary must be a string');
  if (typeof summary === 'string' && summary.length > MAX_BOT_SUMMARY_CHARS)
    throw new Error(`summary is more than ${MAX_BOT_SUMMARY_CHARS} characters`);
  if (o['handoff'] !== undefined && typeof o['handoff'] !== 'boolean')
    throw new Error('handoff must be a boolean');
  const handoff = o['handoff'] === true;
  if (kind === 'message' && !handoff && typeof reply !== 'string')
    throw new Error('an answer needs a reply or handoff: true');
  return {
    reply: typeof reply === 'string' ? reply : null,
    handoff,
    summary: typeof summary === 'string' && summary !== '' ? summary : null,
  };
}

export class ReceptionService implements ReceptionHooks {
  constructor(private readonly deps: ReceptionDeps) {}

  private queue<R>(tenant: string, msg: QueueMessage): Promise<R> {
    return this.deps.actors.ask(tenant, QUEUE_ACTOR_ID, msg);
  }

  routed(
    tenant: string,
    reply: EnqueueReply,
    visitor: string,
    message?: { seq: number; body: string },
  ): void {
    if (reply.route === 'closed') {
      this.closedNotice(tenant, reply.conv, visitor, reply.nextOpen ?? null).catch((err: unknown) =>
        this.deps.warn({ err, tenant, conv: reply.conv }, 'closed-hours notice failed'),
      );
    } else if (reply.route === 'bot' && message) {
      this.toBot(tenant, reply.conv, visitor, message).catch((err: unknown) =>
        this.deps.warn({ err, tenant, conv: reply.conv }, 'bot turn failed'),
      );
    }
  }

  /** The automatic message (stored once per local day) and the leave-a-message form. */
  async closedNotice(tenant: string, conv: string, visitor: string, nextOpen: number | null): Promise<void> {
    const hours = this.deps.settings(tenant).hours;
    if (!hours) return;
    const day = localTime(hours.timeZone, this.deps.clock.now()).date;
    await this.deps
      .postMessage(tenant, conv, {
        from: RECEPTION_SENDER,
        role: 'system',
        cmid: `closed-${day}`,
        body: hours.closedMessage,
      })
      .catch((err: unknown) => this.deps.warn({ err, tenant, conv }, 'closed-hours message not stored'));
    this.deps.notify(
      tenant,
      [visitor],
      deskClosedFrame(conv, hours.closedMessage, nextOpen, hours.leaveMaxChars),
    );
  }

  /** One visitor message to the bot; its answer posted; a hand-off or a failure goes to the queue. */
  async toBot(
    tenant: string,
    conv: string,
    visitor: string,
    message: { seq: number; body: string },
  ): Promise<void> {
    const bot = this.deps.settings(tenant).bot;
    if (!bot) {
      await this.handoff(tenant, conv, visitor, null, 'fallback');
      return;
    }
    let answer: BotAnswer;
    try {
      answer = await this.ask(tenant, {
        type: 'message',
        tenant,
        conv,
        visitor,
        seq: message.seq,
        body: message.body,
      });
    } catch (err) {
      await this.handoff(tenant, conv, visitor, `The bot could not answer (${reason(err)}).`, 'fallback');
      return;
    }
    if (answer.reply !== null)
      await this.deps.postMessage(tenant, conv, {
        from: bot.name,
        role: 'bot',
        cmid: `bot-${message.seq}`,
        body: answer.reply,
      });
    if (answer.handoff) await this.handoff(tenant, conv, visitor, answer.summary, 'bot');
  }

  /**
   * The visitor asks for a person (the `handoff` frame): the bot is asked for a summary (a failure
   * leaves none), then the queue takes over. Rejects forbidden / not_found for a conversation that is
   * not the visitor's; idempotent once handed off.
   */
  async visitorAsksForPerson(tenant: string, conv: string, visitor: string): Promise<EnqueueReply> {
    const view = await this.deps.actors.ask(tenant, conv, {
      type: 'view',
      as: { user: visitor, role: 'visitor' },
    });
    if (!view) throw new SwitchboardError('not_found', `no conversation '${conv}'`);
    let summary: string | null = null;
    if (this.deps.settings(tenant).bot) {
      try {
        summary = (await this.ask(tenant, { type: 'handoff', tenant, conv, visitor })).summary;
      } catch (err) {
        summary = `The visitor asked for a person; the bot gave no summary (${reason(err)}).`;
      }
    }
    return this.handoff(tenant, conv, visitor, summary, 'visitor', view as ConversationView);
  }

  private async handoff(
    tenant: string,
    conv: string,
    visitor: string,
    summary: string | null,
    by: 'bot' | 'visitor' | 'fallback',
    known?: ConversationView,
  ): Promise<EnqueueReply> {
    const view =
      known ?? ((await this.deps.actors.ask(tenant, conv, { type: 'view' })) as ConversationView | null);
    const reply = await this.queue<EnqueueReply>(tenant, {
      type: 'handoff',
      conv,
      visitor,
      skill: view?.skill ?? null,
      summary,
      by,
    });
    if (reply.route === 'closed') await this.closedNotice(tenant, conv, visitor, reply.nextOpen ?? null);
    return reply;
  }

  private async ask(tenant: string, request: Record<string, unknown>): Promise<BotAnswer> {
    const bot = this.deps.settings(tenant).bot;
    if (!bot) throw new SwitchboardError('not_found', 'this tenant has no bot');
    const bytes = await this.deps.transport.request(
      this.deps.names.bizTenantSubject(tenant, bot.subject),
      new TextEncoder().encode(JSON.stringify(request)),
      bot.timeoutMs,
    );
    return parseBotAnswer(bytes, bot.maxReplyChars, request['type'] === 'handoff' ? 'handoff' : 'message');
  }

  /** The tenant's stored left messages, oldest first (at most `limit`). */
  leftMessages(tenant: string, limit: number): Promise<LeftMessageRow[]> {
    return this.queue<LeftMessageRow[]>(tenant, { type: 'leftList', limit });
  }

  /**
   * A message left outside business hours: stored by the queue actor (bounded), then written into
   * the conversation as the visitor's message (`cmid` left-<id>). Creates the conversation when the
   * visitor has none yet. Rejects payload_too_large, busy (the tenant's bound), conflict (no hours).
   */
  async leave(
    tenant: string,
    visitor: string,
    req: { conv: string; body: string; name: string | null; email: string | null; agentBody?: string },
  ): Promise<{ id: string; conv: string; seq: number }> {
    const hours = this.deps.settings(tenant).hours;
    if (!hours)
      throw new SwitchboardError('conflict', 'this desk has no business hours: just send a message');
    if (req.body.length > hours.leaveMaxChars)
      throw new SwitchboardError(
        'payload_too_large',
        `a left message is at most ${hours.leaveMaxChars} characters`,
      );
    const created = (await this.deps.actors.ask(tenant, req.conv, {
      type: 'create',
      visitor,
      skill: null,
      subject: null,
    })) as CreateReply;
    if (created.view.status === 'closed')
      throw new SwitchboardError('conversation_closed', `conversation '${req.conv}' is closed`);
    const left = await this.queue<{ id: string }>(tenant, {
      type: 'leave',
      conv: req.conv,
      visitor,
      name: req.name,
      email: req.email,
      body: req.body,
    });
    const ack = (await this.deps.actors.ask(tenant, req.conv, {
      type: 'send',
      sender: visitor,
      role: 'visitor',
      cmid: `left-${left.id}`,
      body: req.body,
      ...(req.agentBody !== undefined ? { agentBody: req.agentBody } : {}),
    })) as Ack;
    // The contact the form asked for, as a system message (agents see it PII-masked, like any post).
    const contact = [req.name, req.email].filter((x) => x !== null).join(', ');
    if (contact !== '')
      await this.deps.postMessage(tenant, req.conv, {
        from: RECEPTION_SENDER,
        role: 'system',
        cmid: `contact-${left.id}`,
        body: `Contact left with the message: ${contact}`,
      });
    return { id: left.id, conv: req.conv, seq: ack.seq };
  }
}

function reason(err: unknown): string {
  if (err instanceof SwitchboardError) return err.code;
  const e = toSwitchboardError(err);
  return e.code === 'internal' && err instanceof Error ? err.message.slice(0, 120) : e.code;
}
