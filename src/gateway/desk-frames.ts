/**
 * The gateway's side of the support-desk frames (issue #17; docs/PROTOCOL.md, "Support desk"): notes
 * and edits are screened like `send` (content policy, PII-masked agents' view), then handed to the
 * DeskService; each frame resolves with its answer frame.
 */
import type { ContentPolicies } from '../content/policies.js';
import { screenText } from '../content/screen.js';
import type { DeskService } from '../desk/service.js';
import { newId } from '../ids.js';
import type { TextPool } from '../pool/text-pool.js';
import type { DeskClientFrame } from '../protocol/desk-frames.js';
import { SwitchboardError } from '../protocol/errors.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { HistoryStore } from '../store/types.js';

export interface DeskFrameDeps {
  desk: DeskService;
  pool: TextPool;
  content: ContentPolicies;
  store: Pick<HistoryStore, 'auditBlock'>;
  log: { warn(obj: object, msg: string): void };
}

export interface DeskCaller {
  tenant: string;
  user: string;
  role: 'visitor' | 'agent';
}

/** The body screened as `send` screens it; a blocked body is audited, then refused `blocked`. */
async function screened(
  deps: DeskFrameDeps,
  who: DeskCaller,
  conv: string,
  cmid: string,
  body: string,
): Promise<{ text: string; review?: boolean; agentBody: string }> {
  const s = await screenText(deps.pool, deps.content, who.tenant, body);
  if (s.blocked) {
    await deps.store
      .auditBlock({
        tenant: who.tenant,
        id: newId(),
        ts: Date.now(),
        sender: who.user,
        senderRole: who.role,
        conv,
        cmid,
        words: s.words,
        body,
      })
      .catch((err: unknown) => deps.log.warn({ err }, 'could not write a policy block to the audit table'));
    throw new SwitchboardError('blocked', 'the message was refused by the content policy');
  }
  return { text: s.text, agentBody: s.agentText, ...(s.review ? { review: true } : {}) };
}

/** Answers one desk frame: `ack` for note / recall / edit, `done` for label, `canned` for canned. */
export async function handleDeskFrame(
  deps: DeskFrameDeps,
  who: DeskCaller,
  frame: DeskClientFrame,
): Promise<ServerFrame> {
  const { tenant, user } = who;
  switch (frame.type) {
    case 'note': {
      const s = await screened(deps, who, frame.conv, frame.cmid, frame.body);
      const ack = await deps.desk.note(tenant, frame.conv, user, frame.cmid, s.text, s);
      return { type: 'ack', ...ack };
    }
    case 'recall': {
      const ack = await deps.desk.recall(tenant, frame.conv, who, frame.cmid, frame.seq);
      return { type: 'ack', ...ack };
    }
    case 'edit': {
      deps.desk.checkEditBody(tenant, frame.body);
      const s = await screened(deps, who, frame.conv, frame.cmid, frame.body);
      const ack = await deps.desk.edit(tenant, frame.conv, user, frame.cmid, frame.seq, s.text, s);
      return { type: 'ack', ...ack };
    }
    case 'label': {
      const r = await deps.desk.label(tenant, frame.conv, { user, role: 'agent' }, frame.add, frame.remove);
      return {
        type: 'done',
        op: 'label',
        conv: r.conv,
        labels: r.labels,
        ...(frame.ref !== undefined ? { ref: frame.ref } : {}),
      };
    }
    case 'canned': {
      const c = await deps.desk.fill(tenant, frame.conv, user, frame.shortcut);
      return {
        type: 'canned',
        conv: frame.conv,
        ...c,
        ...(frame.ref !== undefined ? { ref: frame.ref } : {}),
      };
    }
  }
}
