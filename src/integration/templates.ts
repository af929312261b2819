/**
 * Placeholder templates of the routing rules: `Order {{order.id}} shipped by {{shipment.carrier}}`.
 * A placeholder is a dotted path into the event (`{{order.items.0.sku}}`; `{{event.id}}`,
 * `{{event.type}}`, `{{event.tenant}}` name the envelope). Templates are compiled once at load (bad
 * syntax is a load error) and render to bounded text: a missing value renders empty and is reported,
 * output past the limit is cut and reported.
 */

export const MAX_TEMPLATE_SOURCE_CHARS = 4000;
export const MAX_PLACEHOLDERS = 32;
const PATH_SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_PATH_SEGMENTS = 8;

export interface Template {
  readonly source: string;
  /** Literal text and placeholder paths, in order. */
  readonly parts: ReadonlyArray<string | { readonly path: readonly string[] }>;
}

export interface Rendered {
  text: string;
  /** Placeholders that had no value (rendered as empty text). */
  missing: string[];
  truncated: boolean;
}

/** Compiles a template; throws Error with a fixed message on bad syntax. */
export function compileTemplate(source: string): Template {
  if (source.length > MAX_TEMPLATE_SOURCE_CHARS) {
    throw new Error(`template is longer than ${MAX_TEMPLATE_SOURCE_CHARS} characters`);
  }
  const parts: Array<string | { path: string[] }> = [];
  let i = 0;
  let placeholders = 0;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    if (open < 0) {
      parts.push(source.slice(i));
      break;
    }
    if (open > i) parts.push(source.slice(i, open));
    const close = source.indexOf('}}', open + 2);
    if (close < 0) throw new Error(`unclosed placeholder at character ${open + 1}: missing '}}'`);
    const expr = source.slice(open + 2, close).trim();
    const path = expr.split('.');
    if (expr === '' || path.length > MAX_PATH_SEGMENTS || !path.every((p) => PATH_SEGMENT.test(p))) {
      throw new Error(
        `placeholder '{{${expr.slice(0, 40)}}}' must be a dotted path of at most ${MAX_PATH_SEGMENTS} names (A-Z a-z 0-9 _ -)`,
      );
    }
    if (++placeholders > MAX_PLACEHOLDERS) {
      throw new Error(`a template may hold at most ${MAX_PLACEHOLDERS} placeholders`);
    }
    parts.push({ path });
    i = close + 2;
  }
  return Object.freeze({ source, parts: Object.freeze(parts) });
}

/** The value at `path` in `root`, or undefined. Own properties only (no prototype walk). */
export function lookup(root: unknown, path: readonly string[]): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function stringify(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return JSON.stringify(value) ?? '';
}

/** Renders with values from `scope`; the text is at most `maxChars` characters. */
export function renderTemplate(t: Template, scope: unknown, maxChars: number): Rendered {
  const missing: string[] = [];
  let text = '';
  for (const part of t.parts) {
    if (typeof part === 'string') text += part;
    else {
      const v = lookup(scope, part.path);
      if (v === undefined || v === null) missing.push(part.path.join('.'));
      else text += stringify(v);
    }
    // Stop early: a placeholder naming a huge field must not build a huge string first.
    if (text.length > maxChars) break;
  }
  const truncated = text.length > maxChars;
  if (truncated) text = `${text.slice(0, Math.max(0, maxChars - 1))}…`;
  return { text, missing, truncated };
}
