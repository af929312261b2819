/**
 * What a business event does under a rule set: the first rule (in file order) whose type pattern and
 * fields match decides, and its actions are rendered into a plan. Pure: the same plan drives the
 * events consumer and `switchboard rules test`, so what the command prints is what the broker does.
 */
import type { CardTemplate, Rule, RuleSet } from './rules.js';
import { lookup, renderTemplate, type Template } from './templates.js';

/** Text of a message or notice, after templates: at most this many characters. */
export const DEFAULT_MAX_RENDERED_CHARS = 2000;

export interface BizEvent {
  tenant: string;
  type: string;
  /** The Nats-Msg-Id (or the payload's `id`): de-duplication key and message cmids derive from it. */
  id: string;
  data: Record<string, unknown>;
}

export interface Card {
  kind: string;
  title: string;
  fields?: Record<string, string>;
  url?: string;
}

export type PlannedAction =
  | {
      kind: 'post';
      conv?: string;
      visitor?: string;
      text?: string;
      card?: Card;
      ifNoConversation: 'open' | 'skip';
      skill?: string;
    }
  | { kind: 'open'; visitor?: string; skill?: string; subject?: string; text?: string; card?: Card }
  | { kind: 'notify'; conv?: string; visitor?: string; text: string };

export interface Plan {
  /** The rule that matched, or null: the event is acknowledged and nothing happens. */
  rule: string | null;
  revision: string;
  actions: PlannedAction[];
  timeoutMs: number;
  retry: number;
  /** Missing placeholders, truncated text. */
  warnings: string[];
}

/** Matches NATS-style type patterns: `order.*`, `order.>`, `>`. */
export function typeMatches(pattern: string, type: string): boolean {
  const p = pattern.split('.');
  const t = type.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

function scopeOf(ev: BizEvent): Record<string, unknown> {
  return { ...ev.data, event: { id: ev.id, type: ev.type, tenant: ev.tenant } };
}

function ruleMatches(rule: Rule, ev: BizEvent, scope: Record<string, unknown>): boolean {
  if (!typeMatches(rule.type, ev.type)) return false;
  for (const f of rule.fields) {
    const v = lookup(scope, f.path);
    if (v === undefined || v === null || typeof v === 'object') return false;
    // Compared as text: YAML `123` and JSON "123" name the same order.
    if (!f.values.some((x) => String(x) === String(v))) return false;
  }
  return true;
}

export function planEvent(rules: RuleSet, ev: BizEvent, maxChars = DEFAULT_MAX_RENDERED_CHARS): Plan {
  const scope = scopeOf(ev);
  const rule = rules.rules.find((r) => ruleMatches(r, ev, scope));
  if (!rule)
    return { rule: null, revision: rules.revision, actions: [], timeoutMs: 0, retry: 0, warnings: [] };
  const warnings: string[] = [];
  const render = (t: Template | undefined, where: string, limit = maxChars): string | undefined => {
    if (!t) return undefined;
    const r = renderTemplate(t, scope, limit);
    for (const m of r.missing) warnings.push(`${where}: no value for {{${m}}}`);
    if (r.truncated) warnings.push(`${where}: cut to ${limit} characters`);
    return r.text === '' ? undefined : r.text;
  };
  const card = (c: CardTemplate | undefined, where: string): Card | undefined => {
    if (!c) return undefined;
    const fields: Record<string, string> = {};
    for (const [k, t] of c.fields) fields[k] = render(t, `${where}.fields.${k}`, 200) ?? '';
    const url = render(c.url, `${where}.url`, 500);
    return {
      kind: render(c.kind, `${where}.kind`, 64) ?? 'card',
      title: render(c.title, `${where}.title`, 200) ?? '',
      ...(c.fields.length > 0 ? { fields } : {}),
      ...(url ? { url } : {}),
    };
  };
  const actions = rule.actions.map((a, i): PlannedAction => {
    const where = `${rule.name}.actions[${i}].${a.kind}`;
    const clean = <T extends object>(o: T): T =>
      Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
    switch (a.kind) {
      case 'post':
        return clean({
          kind: a.kind,
          conv: render(a.conv, `${where}.conv`, 64),
          visitor: render(a.visitor, `${where}.visitor`, 64),
          text: render(a.text, `${where}.text`),
          card: card(a.card, `${where}.card`),
          ifNoConversation: a.ifNoConversation,
          skill: render(a.skill, `${where}.skill`, 64),
        });
      case 'open':
        return clean({
          kind: a.kind,
          visitor: render(a.visitor, `${where}.visitor`, 64),
          skill: render(a.skill, `${where}.skill`, 64),
          subject: render(a.subject, `${where}.subject`, 200),
          text: render(a.text, `${where}.text`),
          card: card(a.card, `${where}.card`),
        });
      default:
        return clean({
          kind: a.kind,
          conv: render(a.conv, `${where}.conv`, 64),
          visitor: render(a.visitor, `${where}.visitor`, 64),
          text: render(a.text, `${where}.text`) ?? '',
        });
    }
  });
  // A defaulted {{conv}} / {{visitor}} that the event does not carry is normal, not worth a warning.
  const quiet = /\.(conv|visitor): no value for \{\{(conv|visitor)\}\}$/;
  return {
    rule: rule.name,
    revision: rules.revision,
    actions,
    timeoutMs: rule.timeoutMs,
    retry: rule.retry,
    warnings: warnings.filter((w) => !quiet.test(w)),
  };
}
