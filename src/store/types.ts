/** The history store's interface, as the actors and the gateway see it (no driver types leak out). */

export type Role = 'visitor' | 'agent' | 'system';

/** One stored chat message. `seq` is per conversation, gap-free from 1. Times are epoch ms. */
export interface MessageRow {
  tenant: string;
  conv: string;
  seq: number;
  /** ULID, unique across the cluster. */
  id: string;
  sender: string;
  senderRole: Role;
  /** The client's message id, used for de-duplication of retries. */
  cmid: string;
  /** The text as delivered (after the sensitive-word mask). */
  body: string;
  ts: number;
}

/** Who is in a conversation. `agent` is null while it waits for an agent. */
export interface ConversationRecord {
  tenant: string;
  conv: string;
  visitor: string;
  agent: string | null;
  createdAt: number;
}

export interface RecentAck {
  cmid: string;
  /** Who sent it: cmids are unique per sender, so de-duplication is keyed by (sender, cmid). */
  sender: string;
  seq: number;
  id: string;
  ts: number;
}

/** What an actor needs to resume a conversation after activation on any node. */
export interface ConversationSnapshot {
  record: ConversationRecord | null;
  lastSeq: number;
  /** The cmids of the last messages (newest last), so retries after a failover are still de-duplicated. */
  recent: RecentAck[];
}

export interface HistoryPage {
  /** Newest first. */
  items: MessageRow[];
  /** Pass as `before` to get the next (older) page; null when there is nothing older. */
  next: number | null;
}

export interface HistoryStore {
  /**
   * Resolves once the row is durable at the configured consistency; rejects BusyError when the
   * writer is full. The row's `ts` is also its write timestamp (the owner's fence time).
   */
  append(row: MessageRow): Promise<void>;
  /** Creates or replaces the participants of a conversation, written at `writeTimeMs` (fence time). */
  saveConversation(record: ConversationRecord, writeTimeMs: number): Promise<void>;
  loadConversation(tenant: string, conv: string): Promise<ConversationRecord | null>;
  /** State for activation: the record, the last seq, and up to `recentLimit` recent acks. */
  loadSnapshot(tenant: string, conv: string, recentLimit: number): Promise<ConversationSnapshot>;
  /** Messages with seq < before (or the newest when before is undefined), newest first, at most `limit`. */
  page(tenant: string, conv: string, before: number | undefined, limit: number): Promise<HistoryPage>;
  /**
   * Messages with seq > after, oldest first, at most `limit` (1–500): what `sync` answers.
   * `more` is true when newer messages may follow the last one returned.
   */
  after(
    tenant: string,
    conv: string,
    after: number,
    limit: number,
  ): Promise<{ items: MessageRow[]; more: boolean }>;
  close(): Promise<void>;
}
