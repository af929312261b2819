/**
 * ChatService: the ChatApi facade plus what the gateway needs for its frames (send, read, typing,
 * rate, accept, agent presence, the open conversations of a user). Stateless: every call is a
 * request to the owning actor (conversation, tenant queue, agent) through the dispatcher.
 *
 * Ordering between actors: a request chain only ever goes agent -> queue -> conversation; this
 * service may call any of them, one after another, never holding one while waiting on another.
 */
import { LRUCache } from 'lru-cache';
import type { AgentMessage, AgentView } from '../../actors/agent.js';
import type {
  Ack,
  ActorRef,
  ConversationMessage,
  ConversationView,
  CreateReply,
  ParticipantRole,
} from '../../actors/conversation.js';
import type { EnqueueReply, QueueEntry, QueueMessage } from '../../actors/queue.js';
import { newId } from '../ids.js';
import { SwitchboardError, toSwitchboardError } from '../protocol/errors.js';
import { ID_PATTERN } from '../protocol/frames.js';
import type { ReceptionHooks } from '../reception/service.js';
import { agentActorId, QUEUE_ACTOR_ID } from '../routing/actor-kind.js';
import type { EncodedBody } from '../store/body-codec.js';
import type { ChatStore, OpenConversation } from '../store/chat-store.js';
import type { Card } from '../store/types.js';
import type { ChatApi } from './api.js';

export interface ActorAsker {
  // biome-ignore lint/suspicious/noExplicitAny: replies are typed per call below
  ask(tenant: string, id: string, msg: unknown): Promise<any>;
}

export interface ChatServiceLimits {
  /** Open conversations listed per user (the `convs` frame, openConversationOf). */
  maxOpenListed: number;
  /** Waiting conversations remembered per process (default QUEUED_MEMO_MAX) and for how long (QUEUED_MEMO_MS). */
  queuedMemoMax?: number;
  queuedMemoMs?: number;
}

/**
 * How long a conversation the queue confirmed as waiting skips the re-enqueue on its visitor's sends.
 * The re-enqueue heals a conversation whose first enqueue failed; for one the queue holds, it costs
 * two requests per message (the view and the enqueue, the ack waiting for both) and is a no-op. Under
 * load that tripled the requests of every waiting visitor's message (issue #14's mixed run).
 */
export const QUEUED_MEMO_MS = 5000;
/** Conversations remembered as waiting, per process (LRU; one evicted just heals again). */
export const QUEUED_MEMO_MAX = 20_000;

const SKILL_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const MAX_SUBJECT_CHARS = 200;
const MAX_REASON_CHARS = 200;

/** One open conversation of a user, as the `convs` frame lists it. */
export interface OpenItem {
  conv: string;
  role: 'visitor' | 'agent';
  status: ConversationView['status'];
  visitor: string;
  agent: string | null;
  lastSeq: number;
  /** The highest seq this user has read (0: none). */
  readSeq: number;
}

export class ChatService implements ChatApi {
  private reception: ReceptionHooks | undefined;
  /** tenant \0 conv of conversations the queue answered as waiting (route queue), for QUEUED_MEMO_MS. */
  private readonly queuedLately: LRUCache<string, true>;

  /** Late-bound: reception (src/reception/service.ts) is built on this service. */
  attachReception(reception: ReceptionHooks): void {
    this.reception = reception;
  }

  constructor(
    private readonly actors: ActorAsker,
    private readonly chat: Pick<ChatStore, 'listOpen'>,
    private readonly limits: ChatServiceLimits,
    private readonly warn: (obj: object, msg: string) => void,
  ) {
    this.queuedLately = new LRUCache<string, true>({
      max: limits.queuedMemoMax ?? QUEUED_MEMO_MAX,
      ttl: limits.queuedMemoMs ?? QUEUED_MEMO_MS,
    });
  }

  private conv<R>(tenant: string, conv: string, msg: ConversationMessage): Promise<R> {
    return this.actors.ask(tenant, conv, msg);
  }

  private queueAsk<R>(tenant: string, msg: QueueMessage): Promise<R> {
    return this.actors.ask(tenant, QUEUE_ACTOR_ID, msg);
  }

  private agentAsk<R>(tenant: string, agent: string, msg: AgentMessage): Promise<R> {
    return this.actors.ask(tenant, agentActorId(agent), msg);
  }

  /**
   * Queues a just-created conversation (or gives it to the tenant's bot, or leaves it out while the
   * desk is closed: src/reception/); on a full queue closes it and rejects busy.
   */
  private async enqueueNew(
    tenant: string,
    view: ConversationView,
    first?: { seq: number; body: string },
  ): Promise<EnqueueReply> {
    try {
      const reply = await this.queueAsk<EnqueueReply>(tenant, {
        type: 'enqueue',
        conv: view.conv,
        visitor: view.visitor,
        skill: view.skill,
        fresh: true,
      });
      this.reception?.routed(tenant, reply, view.visitor, first);
      return reply;
    } catch (err) {
      const e = toSwitchboardError(err);
      if (e.code === 'busy') {
        await this.conv(tenant, view.conv, {
          type: 'close',
          by: { user: 'queue', role: 'system' },
          reason: 'queue_full',
        }).catch((closeErr: unknown) =>
          this.warn({ err: closeErr }, 'could not close a refused conversation'),
        );
      }
      throw e;
    }
  }

  async createConversation(
    tenant: string,
    req: { visitor: string; conv?: string; skill?: string; subject?: string },
  ): Promise<ConversationView> {
    const conv = req.conv ?? `c-${newId()}`;
    if (!ID_PATTERN.test(conv))
      throw new SwitchboardError('invalid_field', 'conv must match the identifier pattern');
    if (!ID_PATTERN.test(req.visitor))
      throw new SwitchboardError('invalid_field', 'visitor must match the identifier pattern');
    if (req.skill !== undefined && !SKILL_PATTERN.test(req.skill))
      throw new SwitchboardError('invalid_field', 'skill must be 1-32 characters of A-Z a-z 0-9 _ -');
    if (
      req.subject !== undefined &&
      (typeof req.subject !== 'string' || req.subject.length > MAX_SUBJECT_CHARS)
    )
      throw new SwitchboardError('invalid_field', `subject must be at most ${MAX_SUBJECT_CHARS} characters`);
    const reply = await this.conv<CreateReply>(tenant, conv, {
      type: 'create',
      visitor: req.visitor,
      skill: req.skill ?? null,
      subject: req.subject ?? null,
    });
    if (reply.view.status === 'queued') {
      // Also for an existing queued conversation: enqueue is idempotent, and this heals one whose
      // first enqueue failed after creation.
      await this.enqueueNew(tenant, reply.view);
      return (await this.conversation(tenant, conv)) ?? reply.view;
    }
    return reply.view;
  }

  postMessage(
    tenant: string,
    conv: string,
    req: { from: string; role: 'system' | 'bot'; cmid: string; body: string; card?: Card },
  ): Promise<Ack> {
    if (req.role !== 'system' && req.role !== 'bot')
      throw new SwitchboardError('invalid_field', 'role must be system or bot');
    const msg: ConversationMessage = {
      type: 'post',
      sender: req.from,
      role: req.role,
      cmid: req.cmid,
      body: req.body,
      ...(req.card ? { card: req.card } : {}),
    };
    return this.conv<Ack>(tenant, conv, msg);
  }

  /** A visitor's or agent's chat message (the gateway's `send`); queues a conversation it creates. */
  async send(
    tenant: string,
    conv: string,
    sender: { user: string; role: ParticipantRole },
    cmid: string,
    body: string,
    /**
     * From the content screen: the review flag, the body as agents see it (PII masked) and, when the
     * pool encoded it, the body as it will be stored.
     */
    screened: { review?: boolean; agentBody?: string; stored?: EncodedBody } = {},
  ): Promise<Ack> {
    const ack = await this.conv<Ack>(tenant, conv, {
      type: 'send',
      sender: sender.user,
      role: sender.role,
      cmid,
      body,
      ...(screened.review === true ? { review: true } : {}),
      ...(screened.agentBody !== undefined ? { agentBody: screened.agentBody } : {}),
      ...(screened.stored !== undefined ? { stored: screened.stored } : {}),
    });
    const { created, queued, ...plain } = ack;
    if (created) {
      // A new conversation that the queue refuses (full) is closed and the send answered busy.
      const view = await this.conversation(tenant, conv);
      if (view) await this.enqueueNew(tenant, view, { seq: ack.seq, body });
    } else if (queued && !this.queuedLately.has(`${tenant}\u0000${conv}`)) {
      // Still waiting (or its first enqueue failed): make sure it is queued. The message itself is
      // durable, so a failure here is logged rather than failing the acknowledged send. A conversation
      // the queue just said it holds is not asked again for QUEUED_MEMO_MS; one routed to the bot or
      // to the closed desk is asked on every message, since that answer acts on the message.
      const view = await this.conversation(tenant, conv).catch(() => null);
      if (view?.status === 'queued')
        await this.queueAsk<EnqueueReply>(tenant, {
          type: 'enqueue',
          conv,
          visitor: view.visitor,
          skill: view.skill,
        }).then(
          (reply) => {
            if (reply.agent === null && (reply.route === undefined || reply.route === 'queue'))
              this.queuedLately.set(`${tenant}\u0000${conv}`, true);
            this.reception?.routed(tenant, reply, view.visitor, { seq: ack.seq, body });
          },
          (err: unknown) => this.warn({ err, conv }, 'enqueue of a waiting conversation failed'),
        );
    }
    return plain;
  }

  async close(tenant: string, conv: string, by: ActorRef, reason?: string): Promise<ConversationView> {
    if (reason !== undefined && reason.length > MAX_REASON_CHARS)
      throw new SwitchboardError('invalid_field', `reason must be at most ${MAX_REASON_CHARS} characters`);
    const view = await this.conv<ConversationView>(tenant, conv, {
      type: 'close',
      by,
      reason: reason ?? null,
    });
    // Frees the agent's slot (or the waiting entry). If this fails, the queue's next reload
    // rebuilds loads from open_conversations, which the close already updated.
    await this.queueAsk(tenant, { type: 'release', conv, agent: view.agent }).catch((err: unknown) =>
      this.warn({ err, conv }, 'queue release after close failed'),
    );
    return view;
  }

  async transfer(
    tenant: string,
    conv: string,
    by: ActorRef,
    to: { agent: string } | { skill: string },
  ): Promise<ConversationView> {
    if ('agent' in to ? !ID_PATTERN.test(to.agent) : !SKILL_PATTERN.test(to.skill))
      throw new SwitchboardError('invalid_field', 'transfer target must be {agent} or {skill}');
    const view = await this.conv<ConversationView | null>(tenant, conv, { type: 'view' });
    if (!view) throw new SwitchboardError('not_found', `no conversation '${conv}'`);
    if (by.role === 'visitor') throw new SwitchboardError('forbidden', 'visitors cannot transfer');
    if (by.role === 'agent' && view.agent !== by.user)
      throw new SwitchboardError('forbidden', 'conversation is not assigned to you');
    if (view.status === 'closed')
      throw new SwitchboardError('conversation_closed', `conversation '${conv}' is closed`);
    if (view.agent === null)
      throw new SwitchboardError('conflict', `conversation '${conv}' has no agent to transfer from`);
    await this.queueAsk(tenant, { type: 'transfer', conv, from: view.agent, to, by });
    return (await this.conversation(tenant, conv)) as ConversationView;
  }

  /** An agent takes a waiting conversation from the queue (the `accept` frame). */
  async accept(tenant: string, conv: string, agent: string): Promise<ConversationView> {
    await this.queueAsk(tenant, { type: 'accept', conv, agent });
    return (await this.conversation(tenant, conv)) as ConversationView;
  }

  queue(tenant: string): Promise<QueueEntry[]> {
    return this.queueAsk<QueueEntry[]>(tenant, { type: 'list' });
  }

  setAgentStatus(
    tenant: string,
    agent: string,
    status: 'online' | 'away' | 'offline',
    opts: { capacity?: number; skills?: string[] } = {},
  ): Promise<AgentView> {
    if (!ID_PATTERN.test(agent))
      throw new SwitchboardError('invalid_field', 'agent must match the identifier pattern');
    return this.agentAsk<AgentView>(tenant, agent, {
      type: 'setStatus',
      status,
      ...(opts.capacity !== undefined ? { capacity: opts.capacity } : {}),
      ...(opts.skills !== undefined ? { skills: opts.skills } : {}),
    });
  }

  /** A gateway node now holds `sockets` sockets of the agent (0 when the last closed). */
  agentPresence(tenant: string, agent: string, node: string, sockets: number): Promise<unknown> {
    return this.agentAsk(tenant, agent, { type: 'presence', node, sockets });
  }

  agentView(tenant: string, agent: string): Promise<AgentView> {
    return this.agentAsk<AgentView>(tenant, agent, { type: 'view' });
  }

  conversation(tenant: string, conv: string): Promise<ConversationView | null> {
    return this.conv<ConversationView | null>(tenant, conv, { type: 'view' });
  }

  /** The view, only if `user` takes part (a visitor sees only its own; an agent only its assigned). */
  viewAs(
    tenant: string,
    conv: string,
    user: string,
    role: ParticipantRole,
  ): Promise<ConversationView | null> {
    return this.conv(tenant, conv, { type: 'view', as: { user, role } });
  }

  async openConversationOf(tenant: string, visitor: string): Promise<ConversationView | null> {
    const open = (await this.chat.listOpen(tenant, visitor, this.limits.maxOpenListed)).filter(
      (o) => o.role === 'visitor',
    );
    open.sort((a, b) => b.since - a.since);
    for (const o of open) {
      const view = await this.conversation(tenant, o.conv);
      if (view && view.status !== 'closed' && view.visitor === visitor) return view;
    }
    return null;
  }

  /** The user's open conversations with their last seq (the `convs` frame: resume after reconnect). */
  async openItems(tenant: string, user: string, role: ParticipantRole): Promise<OpenItem[]> {
    const open: OpenConversation[] = (
      await this.chat.listOpen(tenant, user, this.limits.maxOpenListed)
    ).filter((o) => o.role === role);
    const views = await Promise.all(open.map((o) => this.conversation(tenant, o.conv).catch(() => null)));
    const items: OpenItem[] = [];
    for (const v of views) {
      if (!v || v.status === 'closed') continue;
      if (role === 'visitor' ? v.visitor !== user : v.agent !== user) continue;
      items.push({
        conv: v.conv,
        role,
        status: v.status,
        visitor: v.visitor,
        agent: v.agent,
        lastSeq: v.lastSeq,
        readSeq: v.read[user] ?? 0,
      });
    }
    return items;
  }

  read(tenant: string, conv: string, user: string, role: ParticipantRole, seq: number) {
    return this.conv<{ conv: string; seq: number }>(tenant, conv, { type: 'read', user, role, seq });
  }

  typing(tenant: string, conv: string, user: string, role: ParticipantRole) {
    return this.conv<{ conv: string }>(tenant, conv, { type: 'typing', user, role });
  }

  rate(tenant: string, conv: string, visitor: string, score: number, comment: string | null) {
    return this.conv<ConversationView>(tenant, conv, { type: 'rate', visitor, score, comment });
  }
}
