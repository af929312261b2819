/**
 * Routing rules: a versioned YAML file per tenant that says what a business event does (docs/INTEGRATION.md,
 * "Routing rules"). Parsed and validated once at load; every problem is reported with the line it is on, and
 * a file with any problem is refused as a whole (the registry keeps the last good one). Everything is bounded:
 * file size, rules, actions, match fields, card fields, template size, timeout, retries.
 */
import { createHash } from 'node:crypto';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { compileTemplate, type Template } from './templates.js';

export const RULES_FORMAT_VERSION = 1;
export const MAX_RULES_FILE_BYTES = 256 * 1024;
export const MAX_RULES = 200;
export const MAX_ACTIONS_PER_RULE = 8;
export const MAX_MATCH_FIELDS = 16;
export const MAX_MATCH_VALUES = 32;
export const MAX_CARD_FIELDS = 16;
export const MAX_RETRY = 5;
export const MAX_TIMEOUT_MS = 30_000;
export const DEFAULT_RULE_TIMEOUT_MS = 5_000;
export const DEFAULT_RULE_RETRY = 2;
const MAX_REPORTED_ERRORS = 20;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** Event types: dot-separated tokens; `*` matches one token, `>` the rest (as NATS subjects). */
const TYPE_PATTERN = /^([A-Za-z0-9_-]+|\*)(\.([A-Za-z0-9_-]+|\*))*(\.>)?$|^>$/;

export type Scalar = string | number | boolean;

export interface CardTemplate {
  kind: Template;
  title: Template;
  fields: ReadonlyArray<readonly [string, Template]>;
  url?: Template;
}

export type RuleAction =
  | {
      kind: 'post';
      line: number;
      conv: Template;
      visitor: Template;
      text?: Template;
      card?: CardTemplate;
      /** When the customer has no open conversation: open one (and queue it), or do nothing. */
      ifNoConversation: 'open' | 'skip';
      skill?: Template;
    }
  | {
      kind: 'open';
      line: number;
      visitor: Template;
      skill?: Template;
      subject?: Template;
      text?: Template;
      card?: CardTemplate;
    }
  | { kind: 'notify'; line: number; conv: Template; visitor: Template; text: Template };

export interface Rule {
  name: string;
  line: number;
  /** Event type pattern. */
  type: string;
  /** Dotted path -> accepted values (any of). */
  fields: ReadonlyArray<{ path: readonly string[]; values: readonly Scalar[] }>;
  actions: readonly RuleAction[];
  timeoutMs: number;
  retry: number;
}

export interface RuleSet {
  version: number;
  /** First 16 hex digits of the file's SHA-256: which revision is live. */
  revision: string;
  rules: readonly Rule[];
}

export interface RuleProblem {
  line: number;
  path: string;
  message: string;
}

/** A rules file that cannot be used; `problems` name their lines. */
export class RulesError extends Error {
  override readonly name = 'RulesError';
  constructor(
    readonly file: string,
    readonly problems: readonly RuleProblem[],
  ) {
    super(problems.map((p) => `${file}:${p.line}: ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n'));
  }
}

type Path = (string | number)[];

/** Parses and validates a rules file's text. Throws RulesError naming each problem's line. */
export function parseRules(text: string, file = 'rules.yaml'): RuleSet {
  if (Buffer.byteLength(text) > MAX_RULES_FILE_BYTES) {
    throw new RulesError(file, [
      { line: 1, path: '', message: `file exceeds ${MAX_RULES_FILE_BYTES} bytes` },
    ]);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  const problems: RuleProblem[] = [];
  for (const e of doc.errors) {
    problems.push({ line: e.linePos?.[0]?.line ?? 1, path: '', message: e.message.split('\n')[0] ?? '' });
  }
  if (problems.length > 0) throw new RulesError(file, problems);

  const lineOf = (path: Path): number => {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return lc.linePos(range[0]).line;
    }
    return 1;
  };
  const problem: Problem = Object.assign(
    (path: Path, message: string): void => {
      problem.count++;
      if (problems.length < MAX_REPORTED_ERRORS)
        problems.push({ line: lineOf(path), path: fmt(path), message });
    },
    { count: 0 },
  );

  const root = doc.toJS({ maxAliasCount: 0 }) as unknown;
  if (!isObject(root) || !isMap(doc.contents)) {
    throw new RulesError(file, [
      { line: 1, path: '', message: 'the file must be a map with version and rules' },
    ]);
  }
  unknownKeys(root, ['version', 'rules'], [], problem);
  if (root['version'] !== RULES_FORMAT_VERSION) {
    problem(['version'], `version must be ${RULES_FORMAT_VERSION}`);
  }
  const rawRules = root['rules'];
  const rules: Rule[] = [];
  if (!Array.isArray(rawRules) || !isSeq(doc.get('rules', true))) {
    problem(['rules'], 'rules must be a list');
  } else if (rawRules.length > MAX_RULES) {
    problem(['rules'], `at most ${MAX_RULES} rules per file`);
  } else {
    const names = new Set<string>();
    rawRules.forEach((raw, i) => {
      const rule = parseRule(raw, ['rules', i], problem, lineOf);
      if (!rule) return;
      if (names.has(rule.name)) problem(['rules', i, 'name'], `duplicate rule name '${rule.name}'`);
      names.add(rule.name);
      rules.push(rule);
    });
  }
  if (problems.length > 0)
    throw new RulesError(
      file,
      problems.sort((a, b) => a.line - b.line),
    );
  const revision = createHash('sha256').update(text).digest('hex').slice(0, 16);
  return Object.freeze({ version: RULES_FORMAT_VERSION, revision, rules: Object.freeze(rules) });
}

/** Records a problem at `path`; `count` is how many were recorded so far. */
type Problem = ((path: Path, message: string) => void) & { count: number };

function parseRule(raw: unknown, at: Path, problem: Problem, lineOf: (p: Path) => number): Rule | null {
  if (!isObject(raw)) {
    problem(at, 'a rule must be a map with name, match and actions');
    return null;
  }
  const before = problem.count;
  unknownKeys(raw, ['name', 'match', 'actions', 'timeout', 'retry'], at, problem);
  const name = raw['name'];
  if (typeof name !== 'string' || !NAME.test(name)) {
    problem([...at, 'name'], 'name must be 1-64 characters of A-Z a-z 0-9 _ . -');
  }
  const match = raw['match'];
  let type = '';
  const fields: Array<{ path: string[]; values: Scalar[] }> = [];
  if (!isObject(match)) problem([...at, 'match'], 'match must be a map with at least type');
  else {
    const t = match['type'];
    if (typeof t !== 'string' || !TYPE_PATTERN.test(t) || t.length > 128) {
      problem(
        [...at, 'match', 'type'],
        'match.type must be an event type like order.shipped (* and > allowed)',
      );
    } else type = t;
    const keys = Object.keys(match).filter((k) => k !== 'type');
    if (keys.length > MAX_MATCH_FIELDS) problem([...at, 'match'], `at most ${MAX_MATCH_FIELDS} match fields`);
    for (const k of keys.slice(0, MAX_MATCH_FIELDS)) {
      const path = k.split('.');
      if (!path.every((s) => /^[A-Za-z0-9_-]{1,64}$/.test(s))) {
        problem([...at, 'match', k], `match field '${k.slice(0, 40)}' must be a dotted path`);
        continue;
      }
      const v = match[k];
      const values = Array.isArray(v) ? v : [v];
      if (values.length === 0 || values.length > MAX_MATCH_VALUES || !values.every(isScalar_)) {
        problem([...at, 'match', k], `match.${k} must be a value or a list of 1-${MAX_MATCH_VALUES} values`);
        continue;
      }
      fields.push({ path, values: values as Scalar[] });
    }
  }
  const timeoutMs = parseDuration(raw['timeout'], DEFAULT_RULE_TIMEOUT_MS);
  if (timeoutMs === null || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
    problem(
      [...at, 'timeout'],
      `timeout must be a duration from 1ms to ${MAX_TIMEOUT_MS / 1000}s (e.g. 2s, 500ms)`,
    );
  }
  const retry = raw['retry'] ?? DEFAULT_RULE_RETRY;
  if (!Number.isInteger(retry) || (retry as number) < 0 || (retry as number) > MAX_RETRY) {
    problem([...at, 'retry'], `retry must be an integer from 0 to ${MAX_RETRY}`);
  }
  const actions: RuleAction[] = [];
  const rawActions = raw['actions'];
  if (!Array.isArray(rawActions) || rawActions.length === 0) {
    problem([...at, 'actions'], 'actions must be a non-empty list');
  } else if (rawActions.length > MAX_ACTIONS_PER_RULE) {
    problem([...at, 'actions'], `at most ${MAX_ACTIONS_PER_RULE} actions per rule`);
  } else {
    rawActions.forEach((a, j) => {
      const action = parseAction(a, [...at, 'actions', j], problem, lineOf);
      if (action) actions.push(action);
    });
  }
  if (problem.count !== before) return null;
  return {
    name: name as string,
    line: lineOf(at),
    type,
    fields,
    actions,
    timeoutMs: timeoutMs as number,
    retry: retry as number,
  };
}

const ACTION_KEYS = {
  post: ['conv', 'visitor', 'text', 'card', 'ifNoConversation', 'skill'],
  open: ['visitor', 'skill', 'subject', 'text', 'card'],
  notify: ['conv', 'visitor', 'text'],
} as const;

function parseAction(
  raw: unknown,
  at: Path,
  problem: Problem,
  lineOf: (p: Path) => number,
): RuleAction | null {
  const kinds = Object.keys(ACTION_KEYS);
  if (!isObject(raw) || Object.keys(raw).length !== 1 || !kinds.includes(Object.keys(raw)[0]!)) {
    problem(at, `an action is a map with one key: ${kinds.join(', ')}`);
    return null;
  }
  const kind = Object.keys(raw)[0] as keyof typeof ACTION_KEYS;
  const body = raw[kind];
  const here = [...at, kind];
  if (!isObject(body)) {
    problem(here, `${kind} must be a map`);
    return null;
  }
  unknownKeys(body, ACTION_KEYS[kind], here, problem);
  const tpl = (key: string, required: boolean, dflt?: string): Template | undefined => {
    const v = body[key] ?? dflt;
    if (v === undefined) {
      if (required) problem([...here, key], `${kind}.${key} is required`);
      return undefined;
    }
    if (typeof v !== 'string' && typeof v !== 'number') {
      problem([...here, key], `${kind}.${key} must be text`);
      return undefined;
    }
    try {
      return compileTemplate(String(v));
    } catch (err) {
      problem([...here, key], (err as Error).message);
      return undefined;
    }
  };
  const card = (): CardTemplate | undefined => {
    const c = body['card'];
    if (c === undefined) return undefined;
    if (!isObject(c)) {
      problem([...here, 'card'], 'card must be a map with kind and title');
      return undefined;
    }
    unknownKeys(c, ['kind', 'title', 'fields', 'url'], [...here, 'card'], problem);
    const ct = (key: string, required: boolean): Template | undefined => {
      const v = c[key];
      if (v === undefined) {
        if (required) problem([...here, 'card', key], `card.${key} is required`);
        return undefined;
      }
      try {
        if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`card.${key} must be text`);
        return compileTemplate(String(v));
      } catch (err) {
        problem([...here, 'card', key], (err as Error).message);
        return undefined;
      }
    };
    const fields: Array<[string, Template]> = [];
    const f = c['fields'];
    if (f !== undefined) {
      if (!isObject(f) || Object.keys(f).length > MAX_CARD_FIELDS) {
        problem(
          [...here, 'card', 'fields'],
          `card.fields must be a map of at most ${MAX_CARD_FIELDS} entries`,
        );
      } else {
        for (const [k, v] of Object.entries(f)) {
          try {
            if (typeof v !== 'string' && typeof v !== 'number') throw new Error('a card field must be text');
            if (k.length > 64) throw new Error('a card field name must be at most 64 characters');
            fields.push([k, compileTemplate(String(v))]);
          } catch (err) {
            problem([...here, 'card', 'fields', k], (err as Error).message);
          }
        }
      }
    }
    const kindT = ct('kind', true);
    const title = ct('title', true);
    const url = ct('url', false);
    if (!kindT || !title) return undefined;
    return { kind: kindT, title, fields, ...(url ? { url } : {}) };
  };
  const line = lineOf(at);
  const opt = <T>(key: string, v: T | undefined) => (v === undefined ? {} : { [key]: v });
  switch (kind) {
    case 'post': {
      const text = tpl('text', false);
      const c = card();
      if (body['text'] === undefined && body['card'] === undefined) problem(here, 'post needs text or card');
      const ifNo = body['ifNoConversation'] ?? 'skip';
      if (ifNo !== 'open' && ifNo !== 'skip') {
        problem([...here, 'ifNoConversation'], "ifNoConversation must be 'open' or 'skip'");
      }
      return {
        kind,
        line,
        conv: tpl('conv', false, '{{conv}}')!,
        visitor: tpl('visitor', false, '{{visitor}}')!,
        ifNoConversation: ifNo as 'open' | 'skip',
        ...opt('text', text),
        ...opt('card', c),
        ...opt('skill', tpl('skill', false)),
      };
    }
    case 'open':
      return {
        kind,
        line,
        visitor: tpl('visitor', false, '{{visitor}}')!,
        ...opt('skill', tpl('skill', false)),
        ...opt('subject', tpl('subject', false)),
        ...opt('text', tpl('text', false)),
        ...opt('card', card()),
      };
    case 'notify':
      return {
        kind,
        line,
        conv: tpl('conv', false, '{{conv}}')!,
        visitor: tpl('visitor', false, '{{visitor}}')!,
        text: tpl('text', true) ?? compileTemplate(''),
      };
  }
}

/** `500ms`, `2s`, `1m`, or a number of ms. Null when malformed; `dflt` when absent. */
export function parseDuration(value: unknown, dflt: number): number | null {
  if (value === undefined) return dflt;
  if (typeof value === 'number') return Number.isInteger(value) ? value : null;
  if (typeof value !== 'string') return null;
  const m = /^(\d+)\s*(ms|s|m)?$/.exec(value.trim());
  if (!m) return null;
  const n = Number(m[1]);
  return m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n;
}

function unknownKeys(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  at: Path,
  problem: Problem,
): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k))
      problem([...at, k], `unknown key '${k.slice(0, 40)}' (allowed: ${allowed.join(', ')})`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isScalar_(v: unknown): v is Scalar {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function fmt(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
