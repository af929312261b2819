/**
 * `switchboard rules test <rules.yaml> <event.json>`: what the broker would do with an event, offline.
 * Prints the plan (the rule that matched, each action rendered, warnings) and exits 0; a rules file with
 * problems prints them with their lines and exits 1; an unreadable event exits 2.
 */
import { readFileSync } from 'node:fs';
import { type Plan, type PlannedAction, planEvent } from './rule-plan.js';
import { MAX_RULES_FILE_BYTES, parseRules, RulesError } from './rules.js';

export interface RulesTestOptions {
  type?: string;
  tenant: string;
  id?: string;
  json?: boolean;
}

export interface RulesTestResult {
  code: number;
  output: string;
}

function describe(a: PlannedAction): string {
  const target = (a: { conv?: string; visitor?: string }) =>
    a.conv
      ? `conversation ${a.conv}`
      : a.visitor
        ? `the open conversation of visitor ${a.visitor}`
        : '(no target)';
  const content = (a: { text?: string; card?: { kind: string; title: string } }) =>
    [a.text ? `text "${a.text}"` : '', a.card ? `card ${a.card.kind} "${a.card.title}"` : '']
      .filter(Boolean)
      .join(' + ');
  switch (a.kind) {
    case 'post':
      return `post ${content(a)} as a system message into ${target(a)}${a.ifNoConversation === 'open' ? ' (none open: open one and queue it)' : ' (none open: skip)'}`;
    case 'open':
      return `open a new conversation for visitor ${a.visitor ?? '(none)'}${a.skill ? ` queued for skill ${a.skill}` : ''}${a.subject ? ` subject "${a.subject}"` : ''}${content(a) ? ` with ${content(a)}` : ''}`;
    case 'notify':
      return `notify the agent assigned to ${target(a)}: "${a.text}"`;
  }
}

export function formatPlan(plan: Plan): string {
  if (!plan.rule)
    return `no rule matches (rules revision ${plan.revision}): the event is acknowledged, nothing happens`;
  const lines = [
    `rule '${plan.rule}' matches (rules revision ${plan.revision}; timeout ${plan.timeoutMs} ms, retry ${plan.retry})`,
    ...plan.actions.map((a, i) => `  ${i + 1}. ${describe(a)}`),
    ...plan.warnings.map((w) => `  warning: ${w}`),
  ];
  return lines.join('\n');
}

export function rulesTest(rulesFile: string, eventFile: string, opts: RulesTestOptions): RulesTestResult {
  let rules: ReturnType<typeof parseRules>;
  try {
    const text = readFileSync(rulesFile, 'utf8');
    rules = parseRules(
      text.length > MAX_RULES_FILE_BYTES * 2 ? text.slice(0, MAX_RULES_FILE_BYTES * 2) : text,
      rulesFile,
    );
  } catch (err) {
    if (err instanceof RulesError) return { code: 1, output: err.message };
    return { code: 1, output: `${rulesFile}: ${(err as Error).message}` };
  }
  let data: Record<string, unknown>;
  try {
    const parsed = JSON.parse(readFileSync(eventFile, 'utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('must be a JSON object');
    data = parsed as Record<string, unknown>;
  } catch (err) {
    return { code: 2, output: `${eventFile}: ${(err as Error).message}` };
  }
  const type = opts.type ?? (typeof data['type'] === 'string' ? data['type'] : undefined);
  if (!type)
    return { code: 2, output: `${eventFile}: no event type: pass --type or put "type" in the event` };
  const id = opts.id ?? (typeof data['id'] === 'string' ? data['id'] : 'test-event');
  const plan = planEvent(rules, { tenant: opts.tenant, type, id, data });
  return { code: 0, output: opts.json ? JSON.stringify(plan, null, 2) : formatPlan(plan) };
}
