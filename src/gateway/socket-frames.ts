/**
 * What a socket's frames ask beyond the gateway's door: `send` (screened on the pool, then to the
 * conversation's owner), `sync` (a page of history as this reader may see it), and the rest (reads,
 * typing, agents' actions, the desk, reception), each answered with its frame. The gateway (server.ts)
 * decodes, validates and rate-limits a frame, then calls these; split from it to keep both readable.
 */
import type { Ack } from '../../actors/conversation.js';
import type { ChatService } from '../chat/service.js';
import type { ContentPolicies } from '../content/policies.js';
import { agentBodies, screenText } from '../content/screen.js';
import type { DeskService } from '../desk/service.js';
import { newId } from '../ids.js';
import type { Integration } from '../integration/integration.js';
import type { TextPool } from '../pool/text-pool.js';
import { SwitchboardError } from '../protocol/errors.js';
import {
  type ClientFrame,
  fitFrame,
  MAX_SERVER_FRAME_BYTES,
  type MessagesFrame,
  type MsgFrame,
  type RevealedFrame,
  type RevealFrame,
  type SendFrame,
  type ServerFrame,
  type SyncFrame,
  toAgentItem,
  toMessageItem,
} from '../protocol/frames.js';
import type { ReceptionService } from '../reception/service.js';
import type { HistoryStore, MessageRow } from '../store/types.js';
import { authorizeRead } from './access.js';
import { PII_REVEAL_PERMISSION } from './auth.js';
import { handleDeskFrame } from './desk-frames.js';
import type { SocketData } from './socket-outbox.js';

/** Room in a `messages` frame for everything but its items (type, conv, more, ref). */
const MESSAGES_FRAME_OVERHEAD_BYTES = 1024;

/** The part of the gateway's dependencies the frame handlers use. */
export interface FrameDeps {
  content: ContentPolicies;
  chat: ChatService;
  pool: TextPool;
  store: HistoryStore;
  log: { warn(obj: object, msg: string): void };
  integration?: Pick<Integration, 'contextFor' | 'action'>;
  desk?: DeskService;
  reception?: Pick<ReceptionService, 'leave' | 'visitorAsksForPerson'>;
}

export interface FrameHandlers {
  /** A chat message: screened on the pool (a blocked one is audited and refused), then to its owner. */
  handleSend(data: SocketData, frame: SendFrame): Promise<Ack>;
  /** A page of history after `since`, as this reader may see it, within one server frame. */
  handleSync(data: SocketData, frame: SyncFrame): Promise<MessagesFrame>;
  /** The frames beyond send / sync / ping: each resolves with its answer frame (or none). */
  handleOther(data: SocketData, frame: ClientFrame): Promise<ServerFrame | undefined>;
  /** The rows as this reader sees them: a visitor as stored, an agent with PII masked and review flags. */
  viewOf(reader: { role: string }, rows: MessageRow[]): Promise<Omit<MsgFrame, 'type'>[]>;
}

export function frameHandlers(deps: FrameDeps): FrameHandlers {
  async function handleSend(data: SocketData, frame: SendFrame): Promise<Ack> {
    const screened = await screenText(deps.pool, deps.content, data.tenant, frame.body);
    if (screened.blocked) {
      // Audited before the answer, so every refused attempt is on record (docs/PROTOCOL.md, `blocked`).
      await deps.store
        .auditBlock({
          tenant: data.tenant,
          id: newId(),
          ts: Date.now(),
          sender: data.user,
          senderRole: data.role,
          conv: frame.conv,
          cmid: frame.cmid,
          words: screened.words,
          body: frame.body,
        })
        .catch((err: unknown) => deps.log.warn({ err }, 'could not write a policy block to the audit table'));
      throw new SwitchboardError('blocked', 'the message was refused by the content policy');
    }
    return deps.chat.send(data.tenant, frame.conv, data, frame.cmid, screened.text, {
      review: screened.review,
      agentBody: screened.agentText,
      ...(screened.stored !== undefined ? { stored: screened.stored } : {}),
    });
  }

  async function viewOf(reader: { role: string }, rows: MessageRow[]): Promise<Omit<MsgFrame, 'type'>[]> {
    // A visitor never reads an agent's private note, nor a change of one (issue #17).
    if (reader.role !== 'agent') return rows.filter((r) => r.internal !== true).map(toMessageItem);
    const bodies = await agentBodies(deps.pool, rows);
    return rows.map((row, i) => toAgentItem(row, bodies[i] ?? ''));
  }

  /**
   * `reveal`: one PII value of one message, for an agent whose token carries `pii.reveal`. The
   * reveal is written to the audit table before the value is answered; no audit, no value.
   */
  async function handleReveal(data: SocketData, frame: RevealFrame): Promise<RevealedFrame> {
    if (!data.perms.includes(PII_REVEAL_PERMISSION)) {
      throw new SwitchboardError('forbidden', `revealing needs the '${PII_REVEAL_PERMISSION}' permission`);
    }
    await authorizeRead(deps.store, data, frame.conv);
    const row = await deps.store.message(data.tenant, frame.conv, frame.seq);
    if (row === null) throw new SwitchboardError('not_found', `no message ${frame.seq} in '${frame.conv}'`);
    const found = (await deps.pool.pii(row.body)).found[frame.index];
    if (found === undefined) {
      throw new SwitchboardError('not_found', `message ${frame.seq} has no masked value ${frame.index}`);
    }
    await deps.store.auditReveal({
      tenant: data.tenant,
      id: newId(),
      ts: Date.now(),
      agent: data.user,
      conv: frame.conv,
      seq: frame.seq,
      index: frame.index,
      kind: found.kind,
    });
    const reply: RevealedFrame = {
      type: 'revealed',
      conv: frame.conv,
      seq: frame.seq,
      index: frame.index,
      kind: found.kind,
      value: row.body.slice(found.start, found.end),
    };
    if (frame.ref !== undefined) reply.ref = frame.ref;
    return reply;
  }

  /** The frames beyond send / sync / ping: each resolves with its answer frame (or none). */
  async function handleOther(data: SocketData, frame: ClientFrame): Promise<ServerFrame | undefined> {
    const { tenant, user, role } = data;
    const by = { user, role };
    const ref = 'ref' in frame && frame.ref !== undefined ? { ref: frame.ref } : {};
    switch (frame.type) {
      case 'reveal':
        return handleReveal(data, frame);
      case 'read': {
        const r = await deps.chat.read(tenant, frame.conv, user, role, frame.seq);
        return { type: 'done', op: 'read', conv: frame.conv, seq: r.seq, ...ref };
      }
      case 'typing':
        await deps.chat.typing(tenant, frame.conv, user, role);
        return undefined;
      case 'rate': {
        await deps.chat.rate(tenant, frame.conv, user, frame.score, frame.comment ?? null);
        return { type: 'done', op: 'rate', conv: frame.conv, score: frame.score, ...ref };
      }
      case 'convs': {
        const items = await deps.chat.openItems(tenant, user, role);
        return { type: 'convs', items: items.map(({ role: _r, ...item }) => item), ...ref };
      }
      case 'accept': {
        const v = await deps.chat.accept(tenant, frame.conv, user);
        return { type: 'done', op: 'accept', conv: v.conv, agent: v.agent, ...ref };
      }
      case 'transfer': {
        const v = await deps.chat.transfer(tenant, frame.conv, by, frame.to);
        return { type: 'done', op: 'transfer', conv: v.conv, agent: v.agent, status: v.status, ...ref };
      }
      case 'close': {
        const v = await deps.chat.close(tenant, frame.conv, by, frame.reason);
        return { type: 'done', op: 'close', conv: v.conv, ...ref };
      }
      case 'status': {
        const opts = {
          ...(frame.capacity !== undefined ? { capacity: frame.capacity } : {}),
          ...(frame.skills !== undefined ? { skills: frame.skills } : {}),
        };
        const a = await deps.chat.setAgentStatus(tenant, user, frame.status, opts);
        return {
          type: 'done',
          op: 'status',
          status: a.status,
          capacity: a.capacity,
          skills: a.skills,
          load: a.load,
          ...ref,
        };
      }
      case 'context': {
        if (!deps.integration) throw new SwitchboardError('unavailable', 'integration is not running');
        const c = await deps.integration.contextFor(data, frame.conv, frame.fresh === true);
        return { ...c, ...ref };
      }
      case 'action': {
        if (!deps.integration) throw new SwitchboardError('unavailable', 'integration is not running');
        const r = await deps.integration.action(data, {
          conv: frame.conv,
          name: frame.name,
          args: frame.args,
        });
        return { type: 'action_result', ...r, ...ref };
      }
      case 'note':
      case 'recall':
      case 'edit':
      case 'label':
      case 'canned':
        if (!deps.desk) throw new SwitchboardError('unavailable', 'the support desk is not running');
        return handleDeskFrame(
          { desk: deps.desk, pool: deps.pool, content: deps.content, store: deps.store, log: deps.log },
          data,
          frame,
        );
      case 'leave': {
        if (!deps.reception) throw new SwitchboardError('unavailable', 'reception is not running');
        // Screened like a chat message: the left message becomes the visitor's message at opening.
        const screened = await screenText(deps.pool, deps.content, tenant, frame.body);
        if (screened.blocked)
          throw new SwitchboardError('blocked', 'the message was refused by the content policy');
        const r = await deps.reception.leave(tenant, user, {
          conv: frame.conv,
          body: screened.text,
          name: frame.name ?? null,
          email: frame.email ?? null,
          agentBody: screened.agentText,
        });
        return { type: 'done', op: 'leave', conv: r.conv, id: r.id, seq: r.seq, ...ref };
      }
      case 'handoff': {
        if (!deps.reception) throw new SwitchboardError('unavailable', 'reception is not running');
        const r = await deps.reception.visitorAsksForPerson(tenant, frame.conv, user);
        return {
          type: 'done',
          op: 'handoff',
          conv: r.conv,
          route: r.route ?? 'queue',
          agent: r.agent,
          position: r.position,
          ...ref,
        };
      }
      default:
        return undefined;
    }
  }

  async function handleSync(data: SocketData, frame: SyncFrame): Promise<MessagesFrame> {
    await authorizeRead(deps.store, data, frame.conv);
    const { items, more } = await deps.store.after(data.tenant, frame.conv, frame.since, frame.limit);
    const viewed = await viewOf(data, items);
    // Server frames are bounded (MAX_SERVER_FRAME_BYTES): a longer answer stops early with
    // `more: true`, and the client syncs again from its last item, as for any page.
    const kept = fitFrame(viewed, MAX_SERVER_FRAME_BYTES - MESSAGES_FRAME_OVERHEAD_BYTES);
    const reply: MessagesFrame = {
      type: 'messages',
      conv: frame.conv,
      items: kept,
      more: more || kept.length < viewed.length,
    };
    // Rows this reader may not see (notes, for a visitor) were left out: name their seqs up to where
    // the answer reaches, so the reader's seq stays gap-free (issue #17).
    if (viewed.length < items.length) {
      const upTo = kept.length < viewed.length ? (kept.at(-1)?.seq ?? frame.since) : (items.at(-1)?.seq ?? 0);
      const skipped = items.filter((r) => r.internal === true && r.seq <= upTo).map((r) => r.seq);
      if (skipped.length > 0) reply.skipped = skipped;
    }
    return reply;
  }

  return { handleSend, handleSync, handleOther, viewOf };
}
