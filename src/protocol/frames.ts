/**
 * The frame vocabulary of /ws/visitor and /ws/agent, shared by both subprotocols
 * (specified in docs/PROTOCOL.md). Client frames are validated here; server frames are built here.
 */
import type { Card, MessageRow } from '../store/types.js';
import {
  DESK_AGENT_ONLY_FRAMES,
  type DeskClientFrame,
  type DeskServerFrame,
  parseDeskFrame,
} from './desk-frames.js';
import { SwitchboardError } from './errors.js';
import { ID_PATTERN, invalid, optionalRef, optionalText, requireId } from './fields.js';
import {
  parseReceptionFrame,
  RECEPTION_VISITOR_FRAMES,
  type ReceptionClientFrame,
} from './reception-frames.js';

export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL_MSGPACK = 'switchboard.v1.msgpack';
export const SUBPROTOCOL_JSON = 'switchboard.v1.json';
export type Subprotocol = typeof SUBPROTOCOL_MSGPACK | typeof SUBPROTOCOL_JSON;

export { ID_PATTERN } from './fields.js';
/** Tenant and user ids also appear in NATS subjects, so `.` and `:` are not allowed there. */
export const SUBJECT_TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

// ---- client -> server ----------------------------------------------------------------------------

export interface SendFrame {
  type: 'send';
  conv: string;
  cmid: string;
  body: string;
}

export interface PingFrame {
  type: 'ping';
  ref?: string;
}

/** Asks for the messages after `since` (a gap, or a resume after reconnect). */
export interface SyncFrame {
  type: 'sync';
  conv: string;
  since: number;
  limit: number;
}

/** Marks `conv` read up to `seq` (persisted, relayed to the other participant). */
export interface ReadFrame {
  type: 'read';
  conv: string;
  seq: number;
  ref?: string;
}

/** "I am typing" in `conv`: relayed to the other participant, never stored. */
export interface TypingFrame {
  type: 'typing';
  conv: string;
}

/** Visitor: rates the conversation 1-5. */
export interface RateFrame {
  type: 'rate';
  conv: string;
  score: number;
  comment?: string;
  ref?: string;
}

/** Asks for the caller's open conversations (answered with `convs`): resume after a reconnect. */
export interface ConvsRequestFrame {
  type: 'convs';
  ref?: string;
}

/** Agent: takes a conversation waiting in the queue. */
export interface AcceptFrame {
  type: 'accept';
  conv: string;
  ref?: string;
}

/** Agent: hands a conversation to another agent or a skill group. */
export interface TransferFrame {
  type: 'transfer';
  conv: string;
  to: { agent: string } | { skill: string };
  ref?: string;
}

/** Visitor or agent: closes the conversation. */
export interface CloseFrame {
  type: 'close';
  conv: string;
  reason?: string;
  ref?: string;
}

/** Agent: sets its own status (and optionally capacity and skills). */
export interface StatusFrame {
  type: 'status';
  status: 'online' | 'away' | 'offline';
  capacity?: number;
  skills?: string[];
  ref?: string;
}

/** Agent: asks the business systems for context about one of its conversations (docs/INTEGRATION.md). */
export interface ContextRequestFrame {
  type: 'context';
  conv: string;
  /** Bypass the context cache. */
  fresh?: boolean;
  ref?: string;
}

/** Agent: runs a configured business action (docs/INTEGRATION.md, "Agent actions"). */
export interface ActionFrame {
  type: 'action';
  conv: string;
  name: string;
  args: Record<string, unknown>;
  ref?: string;
}

/** An agent with the `pii.reveal` permission asks for value `index` (0-based) of message `seq` unmasked. */
export interface RevealFrame {
  type: 'reveal';
  conv: string;
  seq: number;
  index: number;
  ref?: string;
}

export type ClientFrame =
  | ContextRequestFrame
  | ActionFrame
  | RevealFrame
  | SendFrame
  | PingFrame
  | SyncFrame
  | ReadFrame
  | TypingFrame
  | RateFrame
  | ConvsRequestFrame
  | AcceptFrame
  | TransferFrame
  | CloseFrame
  | StatusFrame
  | DeskClientFrame
  | ReceptionClientFrame;

/** Frames only an agent socket may send; a visitor gets `forbidden`. */
export const AGENT_ONLY_FRAMES: ReadonlySet<string> = new Set([
  'accept',
  'transfer',
  'status',
  'context',
  'action',
  'reveal',
  ...DESK_AGENT_ONLY_FRAMES,
]);
/** Frames only a visitor socket may send; an agent gets `forbidden`. */
export const VISITOR_ONLY_FRAMES: ReadonlySet<string> = new Set(['rate', ...RECEPTION_VISITOR_FRAMES]);
export const MAX_COMMENT_CHARS = 1000;
export const MAX_REASON_CHARS = 200;

export const DEFAULT_SYNC_LIMIT = 100;
export const MAX_SYNC_LIMIT = 500;

// ---- server -> client ----------------------------------------------------------------------------

export interface WelcomeFrame {
  type: 'welcome';
  protocol: number;
  node: string;
  tenant: string;
  user: string;
  role: 'visitor' | 'agent';
  maxFrameBytes: number;
  maxBodyChars: number;
}

export interface AckFrame {
  type: 'ack';
  cmid: string;
  conv: string;
  seq: number;
  id: string;
  ts: number;
}

export interface MsgFrame {
  type: 'msg';
  conv: string;
  seq: number;
  id: string;
  from: string;
  role: 'visitor' | 'agent' | 'system' | 'bot';
  cmid: string;
  body: string;
  ts: number;
  /** System / bot messages may carry a card. */
  card?: Card;
  /** Agents only: the tenant's content policy flagged this message for review. */
  review?: true;
  /** A private note (or a change of one): only agents ever receive it (issue #17). */
  internal?: true;
  /** This row recalls (body empty) or edits (body = the new text) message `target`. */
  change?: 'recall' | 'edit';
  target?: number;
  /** The message was recalled (body empty) or edited (body = its current text) by a later row. */
  recalled?: true;
  edited?: true;
}

/** The answer to `reveal`: one PII value of one message, unmasked (and audited). */
export interface RevealedFrame {
  type: 'revealed';
  conv: string;
  seq: number;
  index: number;
  kind: 'phone' | 'national_id' | 'bank_card' | 'email';
  value: string;
  ref?: string;
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  /** The `cmid` (or ping `ref`) of the frame this answers, when known. */
  ref?: string;
  retryAfterMs?: number;
}

export interface PongFrame {
  type: 'pong';
  ref?: string;
}

/**
 * The largest frame a server sends (bytes of the encoded frame). Answers that could be longer (`messages`)
 * stop early with `more: true` instead (docs/PROTOCOL.md, "Sizes and limits").
 */
export const MAX_SERVER_FRAME_BYTES = 256 * 1024;

/**
 * The longest prefix of `items` whose encoding fits in `budget` bytes, at least one item (a single
 * message is bounded by the body limit, far below the frame bound). JSON length is the measure: it is
 * never shorter than the msgpack encoding of the same item, so both subprotocols stay under the bound.
 */
export function fitFrame<T>(items: readonly T[], budget: number): T[] {
  let used = 0;
  let n = 0;
  for (const item of items) {
    used += Buffer.byteLength(JSON.stringify(item), 'utf8') + 1;
    if (n > 0 && used > budget) break;
    n++;
  }
  return items.slice(0, n);
}

/** The answer to `sync`: messages with seq > since, oldest first. */
export interface MessagesFrame {
  type: 'messages';
  conv: string;
  items: Omit<MsgFrame, 'type'>[];
  /** True when more messages follow: sync again with `since` = the highest seq of items and skipped. */
  more: boolean;
  /**
   * Seqs of rows this reader may not see (an agent's private notes, for a visitor), left out of
   * `items`: the reader counts them as received, so its seq stays gap-free (issue #17).
   */
  skipped?: number[];
}

/** A stored message as the wire carries it (in `msg`, `messages` and the history API). */
export function toMessageItem(r: MessageRow): Omit<MsgFrame, 'type'> {
  const item: Omit<MsgFrame, 'type'> = {
    conv: r.conv,
    seq: r.seq,
    id: r.id,
    from: r.sender,
    role: r.senderRole,
    cmid: r.cmid,
    body: r.body,
    ts: r.ts,
  };
  if (r.card !== undefined) item.card = r.card;
  if (r.internal === true) item.internal = true;
  if (r.change !== undefined && r.target !== undefined) {
    item.change = r.change;
    item.target = r.target;
  }
  if (r.recalled === true) item.recalled = true;
  if (r.edited === true) item.edited = true;
  return item;
}

/**
 * A stored message as an agent sees it: PII masked (`agentBody`, computed on the pool) and the review
 * flag. `agentBody` must be given for rows without one of their own.
 */
export function toAgentItem(r: MessageRow, agentBody: string): Omit<MsgFrame, 'type'> {
  const item = toMessageItem(r);
  item.body = agentBody;
  if (r.review === true) item.review = true;
  return item;
}

/** Whether toAgentItem(r, agentBody) is exactly toMessageItem(r), so one encoding serves both. */
export function agentItemIsMessageItem(r: MessageRow, agentBody: string): boolean {
  return agentBody === r.body && r.review !== true;
}

/** The answer to the `convs` request. */
export interface ConvsFrame {
  type: 'convs';
  ref?: string;
  items: Array<{
    conv: string;
    status: 'queued' | 'assigned' | 'closed';
    visitor: string;
    agent: string | null;
    lastSeq: number;
    readSeq: number;
  }>;
}

/** The success answer to a request frame that has no other answer (accept, transfer, close, rate, status, read). */
export interface DoneFrame {
  type: 'done';
  op: string;
  ref?: string;
  conv?: string;
  [field: string]: unknown;
}

/** Context from the business systems about a conversation: what answered in time, and what did not. */
export interface ContextFrame {
  type: 'context';
  conv: string;
  items: Record<string, unknown>;
  missing: Array<{ kind: string; reason: string; detail?: string }>;
  cached: string[];
  ts: number;
  ref?: string;
}

/** The business system's answer to an agent's `action`. */
export interface ActionResultFrame {
  type: 'action_result';
  id: string;
  conv: string;
  name: string;
  ok: boolean;
  message: string;
  data?: unknown;
  ref?: string;
}

export type ServerFrame =
  | ContextFrame
  | ActionResultFrame
  | RevealedFrame
  | WelcomeFrame
  | AckFrame
  | MsgFrame
  | ErrorFrame
  | PongFrame
  | MessagesFrame
  | ConvsFrame
  | DoneFrame
  | DeskServerFrame;

// ---- validation ----------------------------------------------------------------------------------

function requireSubjectToken(obj: Record<string, unknown>, field: string): string {
  const v = obj[field];
  if (typeof v !== 'string' || !SUBJECT_TOKEN_PATTERN.test(v))
    throw invalid(`${field} must be 1-64 characters of A-Z a-z 0-9 _ -`);
  return v;
}

/** The `cmid` / `ref` of a frame if it has a usable one, so an error can point back at it. */
export function frameRef(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const o = value as Record<string, unknown>;
  const ref = typeof o['cmid'] === 'string' ? o['cmid'] : o['ref'];
  return typeof ref === 'string' && ID_PATTERN.test(ref) ? ref : undefined;
}

/**
 * Checks a decoded value against the client frame vocabulary.
 * Throws SwitchboardError `bad_frame` (not an object), `unknown_type` or `invalid_field`.
 */
export function parseClientFrame(value: unknown, maxBodyChars: number): ClientFrame {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SwitchboardError('bad_frame', 'a frame must be a map/object');
  }
  const o = value as Record<string, unknown>;
  const type = o['type'];
  if (typeof type !== 'string') throw invalid('type must be a string');
  switch (type) {
    case 'send': {
      const conv = requireId(o, 'conv');
      const cmid = requireId(o, 'cmid');
      const body = o['body'];
      if (typeof body !== 'string') throw invalid('body must be a string');
      if (body.trim().length === 0) throw invalid('body must not be empty');
      // A lone surrogate cannot be encoded as UTF-8: refuse it rather than store U+FFFD.
      if (!body.isWellFormed())
        throw new SwitchboardError('invalid_utf8', 'body holds a lone UTF-16 surrogate');
      if (body.length > maxBodyChars) {
        throw new SwitchboardError('payload_too_large', `body must be at most ${maxBodyChars} characters`);
      }
      return { type, conv, cmid, body };
    }
    case 'sync': {
      const conv = requireId(o, 'conv');
      const since = o['since'];
      if (!Number.isSafeInteger(since) || (since as number) < 0)
        throw invalid('since must be a non-negative integer');
      const limit = o['limit'] ?? DEFAULT_SYNC_LIMIT;
      if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_SYNC_LIMIT) {
        throw invalid(`limit must be an integer from 1 to ${MAX_SYNC_LIMIT}`);
      }
      return { type, conv, since: since as number, limit: limit as number };
    }
    case 'ping': {
      if (o['ref'] === undefined) return { type };
      return { type, ref: requireId(o, 'ref') };
    }
    case 'read': {
      const conv = requireId(o, 'conv');
      const seq = o['seq'];
      if (!Number.isSafeInteger(seq) || (seq as number) < 1) throw invalid('seq must be a positive integer');
      return { type, conv, seq: seq as number, ...optionalRef(o) };
    }
    case 'typing':
      return { type, conv: requireId(o, 'conv') };
    case 'reveal': {
      const conv = requireId(o, 'conv');
      const seq = o['seq'];
      const index = o['index'];
      if (!Number.isSafeInteger(seq) || (seq as number) < 1) throw invalid('seq must be a positive integer');
      if (!Number.isSafeInteger(index) || (index as number) < 0 || (index as number) > 999) {
        throw invalid('index must be an integer from 0 to 999');
      }
      return { type, conv, seq: seq as number, index: index as number, ...optionalRef(o) };
    }
    case 'rate': {
      const conv = requireId(o, 'conv');
      const score = o['score'];
      if (!Number.isInteger(score) || (score as number) < 1 || (score as number) > 5)
        throw invalid('score must be an integer from 1 to 5');
      const frame: RateFrame = { type, conv, score: score as number, ...optionalRef(o) };
      const comment = optionalText(o, 'comment', MAX_COMMENT_CHARS);
      if (comment !== undefined) frame.comment = comment;
      return frame;
    }
    case 'convs':
      return { type, ...optionalRef(o) };
    case 'accept':
      return { type, conv: requireId(o, 'conv'), ...optionalRef(o) };
    case 'context': {
      if (o['fresh'] !== undefined && typeof o['fresh'] !== 'boolean')
        throw invalid('fresh must be a boolean');
      return {
        type,
        conv: requireId(o, 'conv'),
        ...(o['fresh'] === true ? { fresh: true } : {}),
        ...optionalRef(o),
      };
    }
    case 'action': {
      const conv = requireId(o, 'conv');
      const name = requireSubjectToken(o, 'name');
      const args = o['args'] ?? {};
      if (typeof args !== 'object' || args === null || Array.isArray(args))
        throw invalid('args must be a map');
      return { type, conv, name, args: args as Record<string, unknown>, ...optionalRef(o) };
    }
    case 'transfer': {
      const conv = requireId(o, 'conv');
      const to = o['to'];
      if (typeof to !== 'object' || to === null || Array.isArray(to))
        throw invalid('to must be {agent} or {skill}');
      const t = to as Record<string, unknown>;
      if (t['agent'] !== undefined && t['skill'] === undefined)
        return { type, conv, to: { agent: requireSubjectToken(t, 'agent') }, ...optionalRef(o) };
      if (t['skill'] !== undefined && t['agent'] === undefined)
        return { type, conv, to: { skill: requireSubjectToken(t, 'skill') }, ...optionalRef(o) };
      throw invalid('to must have exactly one of agent, skill');
    }
    case 'close': {
      const frame: CloseFrame = { type, conv: requireId(o, 'conv'), ...optionalRef(o) };
      const reason = optionalText(o, 'reason', MAX_REASON_CHARS);
      if (reason !== undefined) frame.reason = reason;
      return frame;
    }
    case 'status': {
      const status = o['status'];
      if (status !== 'online' && status !== 'away' && status !== 'offline')
        throw invalid('status must be online, away or offline');
      const frame: StatusFrame = { type, status, ...optionalRef(o) };
      if (o['capacity'] !== undefined) {
        if (!Number.isInteger(o['capacity'])) throw invalid('capacity must be an integer');
        frame.capacity = o['capacity'] as number;
      }
      if (o['skills'] !== undefined) {
        const skills = o['skills'];
        if (!Array.isArray(skills) || skills.length > 64 || !skills.every((x) => typeof x === 'string'))
          throw invalid('skills must be a list of strings');
        frame.skills = skills as string[];
      }
      return frame;
    }
    default: {
      const desk = parseDeskFrame(o, type, maxBodyChars);
      if (desk !== undefined) return desk;
      // The support desk's frames (src/protocol/reception-frames.ts).
      const reception = parseReceptionFrame(o, type, maxBodyChars);
      if (reception) return reception;
      throw new SwitchboardError('unknown_type', `unknown frame type '${type.slice(0, 32)}'`);
    }
  }
}

/** WebSocket close codes the broker uses (docs/PROTOCOL.md, "Close codes"). */
export const CLOSE_CODES = {
  /** Normal closure. */
  normal: 1000,
  /** The frame exceeded the maximum frame size (sent by uWebSockets.js itself). */
  tooBig: 1009,
  /** The node is shutting down or handing over: reconnect (to any node) and resume with sync. */
  reconnectElsewhere: 1012,
  /** The token expired while the socket was open: get a new token and reconnect. */
  tokenExpired: 4001,
  /** The socket's send buffer passed its bound (slow consumer): reconnect and resume with sync. */
  slowConsumer: 4008,
} as const;
