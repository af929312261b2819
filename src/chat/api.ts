/**
 * The conversation facade: what the gateway, the HTTP API and integrations call to act on
 * conversations, agents and the tenant queue. Every call goes to the owning actor through the
 * dispatcher, so it works from any node; every rejection is a SwitchboardError with a stable code
 * (src/protocol/errors.ts) — `not_found`, `forbidden`, `conflict`, `conversation_closed`,
 * `invalid_field`, `busy`/`unavailable`/`timeout` (retry later).
 */
import type { AgentView } from '../../actors/agent.js';
import type { Ack, ActorRef, ConversationView } from '../../actors/conversation.js';
import type { QueueEntry } from '../../actors/queue.js';
import type { Card } from '../store/types.js';

export type { Ack, ActorRef, AgentView, Card, ConversationView, QueueEntry };

export interface ChatApi {
  /**
   * Creates conversation `req.conv` (a new ULID-based id when absent) for `req.visitor` and queues
   * it (assigned at once when an eligible agent is free). Idempotent: an existing conversation of
   * the same visitor resolves with its view; of another visitor rejects `conflict`. Rejects `busy`
   * when the tenant queue is full (the conversation is then closed with reason `queue_full`).
   */
  createConversation(
    tenant: string,
    req: { visitor: string; conv?: string; skill?: string; subject?: string },
  ): Promise<ConversationView>;
  /**
   * Appends a system or bot message; resolves with the ack once it is durable. The same
   * `(from, cmid)` again resolves with the original ack and stores nothing. Rejects `not_found`,
   * `conversation_closed`.
   */
  postMessage(
    tenant: string,
    conv: string,
    req: { from: string; role: 'system' | 'bot'; cmid: string; body: string; card?: Card },
  ): Promise<Ack>;
  /** Closes (idempotent); a visitor or agent `by` must be the conversation's own. */
  close(tenant: string, conv: string, by: ActorRef, reason?: string): Promise<ConversationView>;
  /**
   * Hands the conversation to another agent (who must be online, connected and below capacity:
   * else `conflict`) or to a skill group (the least-loaded free agent with the skill, else back to
   * the queue's front for that skill). An agent `by` must hold the conversation.
   */
  transfer(
    tenant: string,
    conv: string,
    by: ActorRef,
    to: { agent: string } | { skill: string },
  ): Promise<ConversationView>;
  /** The tenant's waiting conversations, oldest first, with their 1-based positions. */
  queue(tenant: string): Promise<QueueEntry[]>;
  /** Sets an agent's status and optionally capacity / skills; resolves with the agent as the queue sees it. */
  setAgentStatus(
    tenant: string,
    agent: string,
    status: 'online' | 'away' | 'offline',
    opts?: { capacity?: number; skills?: string[] },
  ): Promise<AgentView>;
  /** The conversation, or null when it does not exist in this tenant. */
  conversation(tenant: string, conv: string): Promise<ConversationView | null>;
  /** The visitor's open conversation (the most recently opened), or null. */
  openConversationOf(tenant: string, visitor: string): Promise<ConversationView | null>;
}
