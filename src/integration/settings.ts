/**
 * What the integration needs to know per tenant: its rules file, webhook endpoints, context kinds
 * and agent actions. Read through `IntegrationSource`, so the components do not care where settings
 * live (the tenants file in a node, a literal in tests).
 */
import { typeMatches } from './rule-plan.js';

/** A webhook endpoint: conversation events of the listed types are POSTed to `url`, signed with `secret`. */
export interface WebhookEndpoint {
  readonly id: string;
  readonly url: string;
  /** HMAC-SHA256 key of the signature header (at least 16 characters). */
  readonly secret: string;
  /** Event type patterns (`message`, `*`, `>`); empty or absent = every type. */
  readonly events: readonly string[];
}

export interface ContextSettings {
  /** Kinds asked on `sb.biz.<tenant>.ctx.<kind>` when an agent opens a conversation. */
  readonly kinds: readonly string[];
  /** Deadline for all kinds together, ms. */
  readonly timeoutMs: number;
  /** How long an answer is reused, ms. */
  readonly ttlMs: number;
}

/** An agent action: `action {conv, name, args}` becomes a NATS request on `sb.biz.<tenant>.<subject>`. */
export interface ActionSpec {
  readonly name: string;
  /** Subject suffix under the tenant's business prefix; default `action.<name>`. */
  readonly subject: string;
  /** Agent roles (token `roles` claim, or `agent`) allowed to run it. */
  readonly roles: readonly string[];
  readonly timeoutMs: number;
}

export interface TenantIntegration {
  readonly rulesFile: string | null;
  readonly webhooks: readonly WebhookEndpoint[];
  /** Event type patterns the tenant's own consumers of sb_out read (besides its webhooks). */
  readonly outEvents: readonly string[];
  readonly context: ContextSettings;
  readonly actions: readonly ActionSpec[];
}

export interface IntegrationSource {
  tenant(id: string): TenantIntegration;
  /** tenant -> rules file, for every tenant that has one. */
  rulesFiles(): ReadonlyMap<string, string>;
  /** Whether any tenant (a listed one, or the defaults that unlisted tenants get) has a webhook. */
  hasWebhooks(): boolean;
  /** Calls `cb` after the settings changed (hot reload); returns an unsubscribe. */
  onChange(cb: () => void): () => void;
}

export const MAX_WEBHOOKS_PER_TENANT = 16;
export const MAX_CONTEXT_KINDS = 16;
export const MAX_ACTIONS_PER_TENANT = 64;
export const DEFAULT_CONTEXT_TIMEOUT_MS = 800;
export const DEFAULT_CONTEXT_TTL_MS = 60_000;
export const DEFAULT_ACTION_TIMEOUT_MS = 5_000;

export const EMPTY_INTEGRATION: TenantIntegration = Object.freeze({
  rulesFile: null,
  webhooks: Object.freeze([]),
  outEvents: Object.freeze([]),
  context: Object.freeze({
    kinds: Object.freeze([]),
    timeoutMs: DEFAULT_CONTEXT_TIMEOUT_MS,
    ttlMs: DEFAULT_CONTEXT_TTL_MS,
  }),
  actions: Object.freeze([]),
});

/**
 * Whether anything consumes the tenant's out events of `type`: a webhook that wants the type (no
 * `events` = every type) or a declared consumer (`outEvents`). Decides whether `message` events are
 * published at all (issue #13: one per chat message, stored in JetStream, for nobody).
 */
export function consumesOutEvent(t: TenantIntegration, type: string): boolean {
  if (t.outEvents.some((p) => typeMatches(p, type))) return true;
  return t.webhooks.some((w) => w.events.length === 0 || w.events.some((p) => typeMatches(p, type)));
}

/** A fixed source (tests, and a node without a tenants file). Mutable through `set` for tests. */
export class StaticIntegrationSource implements IntegrationSource {
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly tenants: Map<string, TenantIntegration> = new Map(),
    private readonly fallback: TenantIntegration = EMPTY_INTEGRATION,
  ) {}

  tenant(id: string): TenantIntegration {
    return this.tenants.get(id) ?? this.fallback;
  }

  rulesFiles(): ReadonlyMap<string, string> {
    const out = new Map<string, string>();
    for (const [id, t] of this.tenants) if (t.rulesFile) out.set(id, t.rulesFile);
    return out;
  }

  hasWebhooks(): boolean {
    if (this.fallback.webhooks.length > 0) return true;
    for (const t of this.tenants.values()) if (t.webhooks.length > 0) return true;
    return false;
  }

  set(id: string, settings: Partial<TenantIntegration>): void {
    this.tenants.set(id, { ...EMPTY_INTEGRATION, ...settings });
    for (const l of this.listeners) l();
  }

  onChange(cb: () => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
}
