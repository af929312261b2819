/**
 * DeskService: the support-desk features of issue #17 over the conversation actor and the desk tables.
 * Notes, recalls, edits and labels are requests to the conversation's actor (the single writer), with
 * the tenant's bounds from its `desk` settings filled in here; canned replies are per-tenant and
 * per-agent rows, filled in for a conversation when an agent asks for one.
 */
import type { Ack, ActorRef, ConversationView, ParticipantRole } from '../../actors/conversation.js';
import type { DeskMessage, LabelsReply } from '../../actors/desk.js';
import type { ActorAsker } from '../chat/service.js';
import { compileTemplate, renderTemplate } from '../integration/templates.js';
import { SHORTCUT_PATTERN } from '../protocol/desk-frames.js';
import { SwitchboardError } from '../protocol/errors.js';
import type { CannedReply, DeskStore, LabeledConversation } from '../store/desk-store.js';
import { TENANT_OWNER } from '../store/desk-store.js';
import type { HistoryStore, MessageAudit } from '../store/types.js';
import type { DeskSettings } from './settings.js';

/** Labels: letters, digits, `_` and `-` (they also name listing partitions). Length is the tenant's bound. */
export const LABEL_PATTERN = /^[A-Za-z0-9_-]+$/;
export const MAX_CANNED_TITLE_CHARS = 200;
/** Placeholders filled from the conversation itself; any other root names a context kind. */
export const CONVERSATION_PLACEHOLDERS: ReadonlySet<string> = new Set([
  'conv',
  'visitor',
  'agent',
  'subject',
  'skill',
]);

export interface DeskServiceDeps {
  actors: ActorAsker;
  desk: DeskStore;
  history: Pick<HistoryStore, 'messageAudits'>;
  settings(tenant: string): Readonly<DeskSettings>;
  /** The conversation, if `agent` holds it (else rejects forbidden / not_found). */
  viewAs(tenant: string, conv: string, agent: string): Promise<ConversationView | null>;
  /** The business context of a conversation (kind -> answer); absent: placeholders of context stay empty. */
  context?(tenant: string, agent: string, conv: string): Promise<Record<string, unknown>>;
  maxBodyChars: number;
}

/** A canned reply filled in for one conversation. */
export interface FilledCanned {
  shortcut: string;
  title: string;
  body: string;
  missing: string[];
}

export class DeskService {
  constructor(private readonly deps: DeskServiceDeps) {}

  private ask<R>(tenant: string, conv: string, msg: DeskMessage): Promise<R> {
    return this.deps.actors.ask(tenant, conv, msg);
  }

  settings(tenant: string): Readonly<DeskSettings> {
    return this.deps.settings(tenant);
  }

  /** An agent's private note; resolves with the ack once durable (the same cmid again: the same ack). */
  note(
    tenant: string,
    conv: string,
    agent: string,
    cmid: string,
    body: string,
    screened: { review?: boolean; agentBody?: string } = {},
  ): Promise<Ack> {
    return this.ask(tenant, conv, {
      type: 'note',
      sender: agent,
      cmid,
      body,
      ...(screened.review === true ? { review: true } : {}),
      ...(screened.agentBody !== undefined ? { agentBody: screened.agentBody } : {}),
    });
  }

  /** The sender recalls its own message within the tenant's window (else `conflict`). */
  recall(
    tenant: string,
    conv: string,
    by: { user: string; role: ParticipantRole },
    cmid: string,
    seq: number,
  ): Promise<Ack> {
    const windowMs = this.settings(tenant).recallWindowS * 1000;
    return this.ask(tenant, conv, { type: 'recall', sender: by.user, role: by.role, cmid, seq, windowMs });
  }

  /** An agent edits its own message; the body is bounded by the tenant's maxEditChars. */
  edit(
    tenant: string,
    conv: string,
    agent: string,
    cmid: string,
    seq: number,
    body: string,
    screened: { review?: boolean; agentBody?: string } = {},
  ): Promise<Ack> {
    const s = this.settings(tenant);
    this.checkEditBody(tenant, body);
    return this.ask(tenant, conv, {
      type: 'edit',
      sender: agent,
      cmid,
      seq,
      body,
      maxEdits: s.maxEditsPerMessage,
      ...(screened.review === true ? { review: true } : {}),
      ...(screened.agentBody !== undefined ? { agentBody: screened.agentBody } : {}),
    });
  }

  /** Throws payload_too_large past the tenant's edit bound (checked before the body is screened). */
  checkEditBody(tenant: string, body: string): void {
    const max = this.settings(tenant).maxEditChars;
    if (body.length > max)
      throw new SwitchboardError('payload_too_large', `an edited body must be at most ${max} characters`);
  }

  /** Adds and removes labels; resolves with the conversation's labels afterwards. */
  label(tenant: string, conv: string, by: ActorRef, add: string[], remove: string[]): Promise<LabelsReply> {
    const s = this.settings(tenant);
    for (const label of [...add, ...remove]) this.checkLabel(s, label);
    return this.ask(tenant, conv, {
      type: 'label',
      add: [...new Set(add)],
      remove: [...new Set(remove)],
      by,
      maxLabels: s.maxLabelsPerConversation,
    });
  }

  private checkLabel(s: Readonly<DeskSettings>, label: unknown): asserts label is string {
    if (typeof label !== 'string' || !LABEL_PATTERN.test(label) || label.length > s.maxLabelChars)
      throw new SwitchboardError(
        'invalid_field',
        `a label must be 1-${s.maxLabelChars} characters of A-Z a-z 0-9 _ -`,
      );
  }

  /** Conversations labelled `label` in UTC month `month` (`YYYY-MM`), newest first. */
  byLabel(tenant: string, label: string, month: string, limit: number): Promise<LabeledConversation[]> {
    this.checkLabel(this.settings(tenant), label);
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month))
      throw new SwitchboardError('invalid_field', 'month must be YYYY-MM');
    return this.deps.desk.listByLabel(tenant, label, month, limit);
  }

  /** The bodies recalls and edits replaced in `conv` (auditors only: the caller checks the scope). */
  audits(tenant: string, conv: string, limit: number): Promise<MessageAudit[]> {
    return this.deps.history.messageAudits(tenant, conv, limit);
  }

  // ---- canned replies ---------------------------------------------------------------------------

  private cannedLimit(tenant: string, owner: string): number {
    const s = this.settings(tenant);
    return owner === TENANT_OWNER ? s.maxCannedPerTenant : s.maxCannedPerAgent;
  }

  /** The owner's canned replies (`*`: the tenant's), by shortcut. */
  listCanned(tenant: string, owner: string): Promise<CannedReply[]> {
    return this.deps.desk.listCanned(tenant, owner, this.cannedLimit(tenant, owner));
  }

  /**
   * Creates or replaces a canned reply. Rejects invalid_field for a bad shortcut, title or template
   * (`{{path}}` placeholders), payload_too_large past maxBodyChars, and `conflict` when a new
   * shortcut would pass the owner's bound (maxCannedPerTenant / maxCannedPerAgent).
   */
  async putCanned(
    tenant: string,
    owner: string,
    shortcut: string,
    input: { title?: string; body: string },
    now: number,
  ): Promise<{ reply: CannedReply; created: boolean }> {
    if (!SHORTCUT_PATTERN.test(shortcut))
      throw new SwitchboardError('invalid_field', 'shortcut must be 1-32 characters of a-z 0-9 _ -');
    const title = input.title ?? '';
    if (title.length > MAX_CANNED_TITLE_CHARS)
      throw new SwitchboardError(
        'invalid_field',
        `title must be at most ${MAX_CANNED_TITLE_CHARS} characters`,
      );
    if (input.body.trim().length === 0) throw new SwitchboardError('invalid_field', 'body must not be empty');
    if (input.body.length > this.deps.maxBodyChars)
      throw new SwitchboardError(
        'payload_too_large',
        `body must be at most ${this.deps.maxBodyChars} characters`,
      );
    try {
      compileTemplate(input.body);
    } catch (err) {
      throw new SwitchboardError('invalid_field', `body: ${(err as Error).message}`);
    }
    const limit = this.cannedLimit(tenant, owner);
    const existing = await this.deps.desk.getCanned(tenant, owner, shortcut);
    if (existing === null) {
      // Counted before the write: two concurrent creations may pass the bound by one each; reads stay
      // bounded by it all the same (listCanned reads at most `limit`).
      const all = await this.deps.desk.listCanned(tenant, owner, limit);
      if (all.length >= limit)
        throw new SwitchboardError(
          'conflict',
          `at most ${limit} canned replies ${owner === TENANT_OWNER ? 'per tenant' : 'per agent'}`,
        );
    }
    const reply: CannedReply = { owner, shortcut, title, body: input.body, updatedAt: now };
    await this.deps.desk.putCanned(tenant, reply);
    return { reply, created: existing === null };
  }

  async deleteCanned(tenant: string, owner: string, shortcut: string): Promise<void> {
    if (!SHORTCUT_PATTERN.test(shortcut))
      throw new SwitchboardError('invalid_field', 'shortcut must be 1-32 characters of a-z 0-9 _ -');
    if (!(await this.deps.desk.deleteCanned(tenant, owner, shortcut)))
      throw new SwitchboardError('not_found', `no canned reply '${shortcut}'`);
  }

  /**
   * The agent's reply `shortcut` (its own first, else the tenant's), filled in for `conv`, which the
   * agent must hold. Placeholders: {{conv}}, {{visitor}}, {{agent}}, {{subject}}, {{skill}}, and any
   * other root names a context kind ({{order.id}} = field `id` of the `order` context answer).
   */
  async fill(tenant: string, conv: string, agent: string, shortcut: string): Promise<FilledCanned> {
    const view = await this.deps.viewAs(tenant, conv, agent);
    if (view === null) throw new SwitchboardError('not_found', `no conversation '${conv}'`);
    const reply =
      (await this.deps.desk.getCanned(tenant, agent, shortcut)) ??
      (await this.deps.desk.getCanned(tenant, TENANT_OWNER, shortcut));
    if (reply === null) throw new SwitchboardError('not_found', `no canned reply '${shortcut}'`);
    const template = compileTemplate(reply.body);
    const scope: Record<string, unknown> = {};
    const needsContext = template.parts.some(
      (p) => typeof p !== 'string' && !CONVERSATION_PLACEHOLDERS.has(p.path[0] ?? ''),
    );
    if (needsContext && this.deps.context) Object.assign(scope, await this.deps.context(tenant, agent, conv));
    Object.assign(scope, {
      conv: view.conv,
      visitor: view.visitor,
      agent,
      subject: view.subject,
      skill: view.skill,
    });
    const r = renderTemplate(template, scope, this.deps.maxBodyChars);
    return { shortcut, title: reply.title, body: r.text, missing: r.missing };
  }
}
