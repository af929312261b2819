/**
 * The integration settings of each tenant, read from the tenants file (src/tenants.ts, section
 * `integration`) with this module's defaults filled in. Follows the registry's hot reloads.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { DEFAULTS_ID, type TenantRegistry, type TenantsSnapshot } from '../tenants.js';
import {
  DEFAULT_ACTION_TIMEOUT_MS,
  DEFAULT_CONTEXT_TIMEOUT_MS,
  DEFAULT_CONTEXT_TTL_MS,
  type IntegrationSource,
  type TenantIntegration,
} from './settings.js';

export function tenantIntegration(snapshot: TenantsSnapshot, id: string): TenantIntegration {
  const s = snapshot.tenant(id).integration;
  const file = s.rulesFile;
  return {
    rulesFile: file
      ? isAbsolute(file) || !snapshot.file
        ? file
        : resolve(dirname(snapshot.file), file)
      : null,
    webhooks: (s.webhooks ?? []).map((w) => ({
      id: w.id,
      url: w.url,
      secret: w.secret,
      events: w.events ?? [],
    })),
    outEvents: s.outEvents ?? [],
    context: {
      kinds: s.context?.kinds ?? [],
      timeoutMs: s.context?.timeoutMs ?? DEFAULT_CONTEXT_TIMEOUT_MS,
      ttlMs: s.context?.ttlMs ?? DEFAULT_CONTEXT_TTL_MS,
    },
    actions: (s.actions ?? []).map((a) => ({
      name: a.name,
      subject: a.subject ?? `action.${a.name}`,
      roles: a.roles ?? ['agent'],
      timeoutMs: a.timeoutMs ?? DEFAULT_ACTION_TIMEOUT_MS,
    })),
  };
}

export function tenantIntegrationSource(registry: TenantRegistry): IntegrationSource {
  // Settings are derived once per snapshot and tenant: the hot paths (every out event) read a map.
  let snapshot = registry.current;
  let cache = new Map<string, TenantIntegration>();
  const current = () => {
    if (registry.current !== snapshot) {
      snapshot = registry.current;
      cache = new Map();
    }
    return snapshot;
  };
  return {
    tenant(id) {
      const snap = current();
      let t = cache.get(id);
      if (!t) {
        t = tenantIntegration(snap, id);
        // Unlisted tenants share the defaults; the bound keeps a flood of unknown tenant ids cheap.
        if (cache.size < 100_000) cache.set(id, t);
      }
      return t;
    },
    rulesFiles() {
      const snap = current();
      const out = new Map<string, string>();
      for (const id of snap.tenantIds()) {
        const f = this.tenant(id).rulesFile;
        if (f) out.set(id, f);
      }
      return out;
    },
    hasWebhooks() {
      const snap = current();
      // DEFAULTS_ID is never a listed id: it stands for the defaults every unlisted tenant gets.
      if (this.tenant(DEFAULTS_ID).webhooks.length > 0) return true;
      return snap.tenantIds().some((id) => this.tenant(id).webhooks.length > 0);
    },
    onChange(cb) {
      return registry.onChange(() => cb());
    },
  };
}
