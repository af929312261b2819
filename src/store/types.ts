/** The history store's interface, as the actors and the gateway see it (no driver types leak out). */

export type Role = 'visitor' | 'agent' | 'system' | 'bot';

/** A structured attachment of a system or bot message (an order, a parcel...): rendered by clients. */
export interface Card {
  kind: string;
  title: string;
  fields?: Record<string, string>;
  url?: string;
}

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
  /** Set when the tenant's content policy flagged the text for review (stored in messages.flags). */
  review?: boolean;
  /**
   * The body as agents see it (PII masked), when the sender's gateway computed it. Travels with a new
   * row to delivery and the owner's cache; never stored (history read by agents is masked on read).
   */
  agentBody?: string;
  /** Only on system / bot messages that carry one. */
  card?: Card;
  /** A private note (issue #17): agents only; never delivered to the visitor nor in its reads. */
  internal?: boolean;
  /** A change row: it recalls or edits message `target` (a seq of the same conversation). */
  change?: 'recall' | 'edit';
  target?: number;
  /** The message's current state, when a later row recalled it (body empty) or edited it (body current). */
  recalled?: boolean;
  edited?: boolean;
  /** The seqs of this message's edit rows, read with its state (not on the wire). */
  editSeqs?: number[];
  /** Written with a change row, in the same logged batch: the new states and the audit entries. */
  effects?: ChangeEffects;
}

/**
 * A message's current state after a recall or edit (table message_states, keyed by the message's own
 * seq). Message rows stay insert-only: readers apply this on read (docs/ARCHITECTURE.md, "Recall and edit").
 */
export interface MessageState {
  seq: number;
  state: 'recalled' | 'edited';
  /** The current body of an edited message; null when recalled. */
  body: string | null;
  /** The agents' view of `body` (PII masked), when known; not stored. */
  agentBody?: string;
  editSeqs: number[];
}

/** The body a recall or edit replaced, kept for auditors only (table message_audits). */
export interface MessageAudit {
  tenant: string;
  conv: string;
  /** The message whose body was replaced. */
  target: number;
  /** The recall / edit row. */
  changeSeq: number;
  kind: 'recall' | 'edit';
  by: string;
  byRole: Role;
  body: string;
  ts: number;
}

export interface ChangeEffects {
  states: MessageState[];
  audits: MessageAudit[];
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

/** A conversation in a listing (by visitor, by agent, by day), newest first. */
export interface ConversationListing {
  conv: string;
  createdAt: number;
}

/** Which listing to read: one visitor's, one agent's (ever assigned), or one UTC day's (`YYYY-MM-DD`). */
export type ListingKey = { visitor: string } | { agent: string } | { day: string };

/** One audited PII reveal: `agent` saw value number `index` (0-based) of message `seq` unmasked. */
export interface RevealAudit {
  tenant: string;
  id: string;
  ts: number;
  agent: string;
  conv: string;
  seq: number;
  index: number;
  kind: string;
}

/** One agent action (src/integration/actions.ts): allowed and answered, refused, or failed. */
export interface ActionAudit {
  tenant: string;
  id: string;
  ts: number;
  agent: string;
  conv: string;
  action: string;
  /** The arguments as JSON text (cut at 4 KiB). */
  args: string;
  outcome: 'ok' | 'failed' | 'refused' | 'error';
  detail: string;
  tookMs: number;
}

/** One message refused by the content policy (`block`), with the words that refused it. */
export interface BlockAudit {
  tenant: string;
  id: string;
  ts: number;
  sender: string;
  senderRole: Role;
  conv: string;
  cmid: string;
  words: string[];
  body: string;
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
  /**
   * The original ack of (sender, cmid) when it is stored in the newest two buckets (the cmids table,
   * rows kept cmidTtlS) AND the message row at its seq is that message (same id), else null. A cmids
   * row can outlive its message row (a write of an earlier owner that landed after a takeover sealed
   * it), so the cmids row alone never answers a retry. `lastSeq` is the conversation's last seq.
   */
  lookupCmid(
    tenant: string,
    conv: string,
    sender: string,
    cmid: string,
    lastSeq: number,
  ): Promise<RecentAck | null>;
  /**
   * Seals a conversation at activation: a range tombstone over every seq above `lastSeq` in the bucket
   * of `lastSeq + 1`, written at `sealTimeMs` (the new owner's fence time) minus one microsecond. Any
   * write of an earlier owner (whose fence times are all earlier) that lands later is shadowed by it,
   * whatever order the writes reach Cassandra in; the new owner's own rows, written at later fence
   * times, are not (docs/ARCHITECTURE.md, "Takeover").
   */
  sealAbove(tenant: string, conv: string, lastSeq: number, sealTimeMs: number): Promise<void>;
  /** One message by seq, or null. */
  message(tenant: string, conv: string, seq: number): Promise<MessageRow | null>;
  /** Up to `limit` (1-500) conversations of one listing, newest first. */
  listConversations(tenant: string, by: ListingKey, limit: number): Promise<ConversationListing[]>;
  /** Writes a reveal to the audit table; resolves once durable. */
  auditReveal(entry: RevealAudit): Promise<void>;
  /** Writes a refused message to the audit table; resolves once durable. */
  auditBlock(entry: BlockAudit): Promise<void>;
  /** Audited reveals of one tenant and UTC day, newest first. */
  reveals(tenant: string, day: string, limit: number): Promise<RevealAudit[]>;
  /** Audited blocks of one tenant and UTC day, newest first. */
  blocks(tenant: string, day: string, limit: number): Promise<BlockAudit[]>;
  /** The bodies recalls and edits replaced in one conversation, oldest target first, at most `limit`. */
  messageAudits(tenant: string, conv: string, limit: number): Promise<MessageAudit[]>;
  close(): Promise<void>;
}
