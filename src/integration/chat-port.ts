/**
 * What the integration asks of conversations: the part of the chat facade (src/chat/api.ts, ChatApi)
 * it uses, as its own interface so the integration is testable and its needs are visible. ChatApi
 * satisfies it structurally.
 */
import type { Card } from './rule-plan.js';

export interface ConversationRef {
  readonly tenant: string;
  readonly conv: string;
  readonly visitor: string;
  readonly agent: string | null;
  readonly status: string;
}

export interface ChatPort {
  /** Creates and queues a conversation; idempotent for the same visitor and conv id. */
  createConversation(
    tenant: string,
    req: { visitor: string; conv?: string; skill?: string; subject?: string },
  ): Promise<ConversationRef>;
  /** A system or bot message; the same (from, cmid) again stores nothing and resolves the same. */
  postMessage(
    tenant: string,
    conv: string,
    req: { from: string; role: 'system' | 'bot'; cmid: string; body: string; card?: Card },
  ): Promise<unknown>;
  conversation(tenant: string, conv: string): Promise<ConversationRef | null>;
  openConversationOf(tenant: string, visitor: string): Promise<ConversationRef | null>;
}

/** Pushes a server frame to every socket of one user, wherever it is connected (sb.user.<tenant>.<user>). */
export type UserPush = (tenant: string, user: string, frame: Record<string, unknown>) => void;
