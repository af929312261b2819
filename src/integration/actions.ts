/**
 * Agent actions into business systems: `action {conv, name, args}` from an agent becomes a NATS request
 * on `sb.biz.<tenant>.<subject>` (the tenant's configured action), after three checks: the action exists
 * for the tenant, the agent's role is allowed to run it, and the agent holds the conversation. The
 * business system's answer is posted into the conversation as a system message, and every call — allowed,
 * refused or failed — is written to the audit table.
 */
import { randomUUID } from 'node:crypto';
import type { ClusterNames } from '../cluster/names.js';
import type { Transport } from '../cluster/transport.js';
import { SwitchboardError } from '../protocol/errors.js';
import type { ActionAudit } from '../store/types.js';
import type { ChatPort } from './chat-port.js';
import { decodeEventPayload } from './event-codec.js';
import type { IntegrationSource } from './settings.js';

export const MAX_ACTION_ARGS_BYTES = 4096;
export const MAX_ACTION_REPLY_BYTES = 16 * 1024;
export const MAX_ACTION_MESSAGE_CHARS = 1000;
/** Sender id of the messages actions post. */
export const ACTIONS_SENDER = 'system';

export interface ActionCaller {
  tenant: string;
  user: string;
  role: string;
  /** Extra roles the token grants (e.g. `supervisor`), when it carries any. */
  roles?: readonly string[];
}

export interface ActionRequest {
  conv: string;
  name: string;
  args: Record<string, unknown>;
}

export type ActionOutcomeKind = 'ok' | 'failed' | 'refused' | 'error';

/** Where calls are audited (the `action_audits` table: CassandraHistoryStore.auditAction). */
export interface AuditLog {
  auditAction(entry: ActionAudit): Promise<void>;
}

export interface ActionResult {
  id: string;
  conv: string;
  name: string;
  ok: boolean;
  message: string;
  data?: unknown;
}

export class AgentActions {
  constructor(
    private readonly transport: Transport,
    private readonly names: ClusterNames,
    private readonly source: IntegrationSource,
    private readonly chat: ChatPort,
    private readonly audit: AuditLog,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Runs the action. Resolves with the business system's verdict (ok or not: both are posted and
   * audited). Rejects SwitchboardError `not_found` (no such action or conversation), `forbidden` (role,
   * or the conversation is not the agent's), `invalid_field` (args), `timeout` / `unavailable` (the
   * business system did not answer; audited, nothing posted).
   */
  async invoke(caller: ActionCaller, req: ActionRequest): Promise<ActionResult> {
    const started = this.now();
    const id = randomUUID();
    const args = JSON.stringify(req.args ?? {});
    const audit = (outcome: ActionOutcomeKind, detail: string) =>
      this.audit.auditAction({
        tenant: caller.tenant,
        conv: req.conv,
        id,
        ts: started,
        agent: caller.user,
        action: req.name,
        args: args.length > MAX_ACTION_ARGS_BYTES ? args.slice(0, MAX_ACTION_ARGS_BYTES) : args,
        outcome,
        detail: detail.slice(0, MAX_ACTION_MESSAGE_CHARS),
        tookMs: this.now() - started,
      });
    const refuse = async (err: SwitchboardError): Promise<never> => {
      await audit('refused', `${err.code}: ${err.message}`);
      throw err;
    };

    const spec = this.source.tenant(caller.tenant).actions.find((a) => a.name === req.name);
    if (!spec)
      return refuse(
        new SwitchboardError('not_found', `no action '${req.name.slice(0, 64)}' for this tenant`),
      );
    const roles = [caller.role, ...(caller.roles ?? [])];
    if (!spec.roles.some((r) => roles.includes(r))) {
      return refuse(
        new SwitchboardError(
          'forbidden',
          `action '${spec.name}' needs one of the roles ${spec.roles.join(', ')}`,
        ),
      );
    }
    if (Buffer.byteLength(args) > MAX_ACTION_ARGS_BYTES) {
      return refuse(
        new SwitchboardError(
          'payload_too_large',
          `args must be at most ${MAX_ACTION_ARGS_BYTES} bytes of JSON`,
        ),
      );
    }
    const view = await this.chat.conversation(caller.tenant, req.conv);
    if (!view) return refuse(new SwitchboardError('not_found', 'no such conversation'));
    if (view.agent !== caller.user) {
      return refuse(new SwitchboardError('forbidden', 'the conversation is not assigned to you'));
    }

    const request = {
      id,
      action: spec.name,
      tenant: caller.tenant,
      conv: req.conv,
      visitor: view.visitor,
      agent: caller.user,
      args: req.args ?? {},
    };
    let reply: Record<string, unknown>;
    try {
      const bytes = await this.transport.request(
        this.names.bizTenantSubject(caller.tenant, spec.subject),
        new TextEncoder().encode(JSON.stringify(request)),
        spec.timeoutMs,
      );
      reply = decodeEventPayload(bytes, MAX_ACTION_REPLY_BYTES);
    } catch (err) {
      const e =
        err instanceof SwitchboardError
          ? err
          : new SwitchboardError(
              'unavailable',
              `the business system's answer is unreadable: ${(err as Error).message}`,
            );
      await audit('error', `${e.code}: ${e.message}`);
      throw e;
    }
    const ok = reply['ok'] === true;
    const message =
      typeof reply['message'] === 'string' && reply['message'].trim() !== ''
        ? reply['message'].slice(0, MAX_ACTION_MESSAGE_CHARS)
        : ok
          ? 'done'
          : 'failed';
    await this.chat.postMessage(caller.tenant, req.conv, {
      from: ACTIONS_SENDER,
      role: 'system',
      cmid: `act-${id}`,
      body: `${spec.name} by ${caller.user}: ${message}`,
    });
    await audit(ok ? 'ok' : 'failed', message);
    return {
      id,
      conv: req.conv,
      name: spec.name,
      ok,
      message,
      ...(reply['data'] === undefined ? {} : { data: reply['data'] }),
    };
  }
}
