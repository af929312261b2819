/**
 * One conversation as the console holds it: its counters (last seq, read positions), typing, the
 * business context and action results, and a bounded, contiguous window of its messages filled from
 * pushes (`msg`, `messages`) and from history pages. Pure functions over plain objects, no I/O.
 */

import type { Frame } from '../shared/connection.js';

/** Messages held per conversation; the oldest are dropped and re-read from history when paged to. */
export const MAX_HELD_MESSAGES = 1000;

export interface Msg {
  seq: number;
  from: string;
  role: string;
  body: string;
  ts: number;
  review?: boolean;
  card?: { title?: string; fields?: Record<string, string> };
  /** Support desk (docs/PROTOCOL.md): a private note; a recall / edit row of `target`; its marks. */
  internal?: boolean;
  change?: 'recall' | 'edit';
  target?: number;
  recalled?: boolean;
  edited?: boolean;
}

export interface Conv {
  conv: string;
  visitor: string;
  status: 'assigned' | 'closed' | 'gone';
  lastSeq: number;
  readSeq: number;
  visitorRead: number;
  visitorTypingUntil: number;
  /** Loaded messages, ascending, contiguous from `messages[0].seq` up to the newest seen. */
  messages: Msg[];
  /** The `before` cursor of the next older history page; null: nothing older. */
  older: number | null;
  loaded: boolean;
  revealed: Record<string, string>;
  context?: Frame;
  results: Frame[];
  /** The bot's hand-off (`handoff` frame): its summary, shown above the business context. */
  handoff?: Frame;
}

/** A page of `GET /api/v1/conversations/{id}/messages`: newest first, with the `before` cursor. */
export interface HistoryPage {
  items: Msg[];
  next: number | null;
}

export function newConv(conv: string, visitor: string): Conv {
  return {
    conv,
    visitor,
    status: 'assigned',
    lastSeq: 0,
    readSeq: 0,
    visitorRead: 0,
    visitorTypingUntil: 0,
    messages: [],
    older: null,
    loaded: false,
    revealed: {},
    results: [],
  };
}

/**
 * Applies a pushed message: `applied`, `ignored` (a duplicate, or the conversation is not loaded
 * yet: its first history page will hold it), or `gap` (messages are missing before it: the caller
 * syncs from the newest held seq). Keeps at most MAX_HELD_MESSAGES, dropping the oldest.
 */
export function applyMessage(c: Conv, m: Msg): 'applied' | 'ignored' | 'gap' {
  const top = c.messages.at(-1)?.seq ?? 0;
  c.lastSeq = Math.max(c.lastSeq, m.seq);
  if (!c.loaded || m.seq <= top) return 'ignored';
  if (top > 0 && m.seq > top + 1) return 'gap';
  c.messages.push(m);
  // A recall or edit row marks its target (it stays in the list, unrendered, for seq continuity).
  if (m.change !== undefined && m.target !== undefined) {
    const recall = m.change === 'recall';
    c.messages = c.messages.map((x) =>
      x.seq === m.target
        ? { ...x, body: recall ? '' : m.body, recalled: recall || x.recalled, edited: !recall }
        : x,
    );
  }
  if (c.messages.length > MAX_HELD_MESSAGES) {
    c.messages = c.messages.slice(-MAX_HELD_MESSAGES);
    c.older = c.messages[0]?.seq ?? null;
  }
  return 'applied';
}

/**
 * Merges a history page: the first one is the newest (messages pushed meanwhile are kept, deduped
 * by seq); later ones go before the held window (beyond MAX_HELD_MESSAGES the newest are dropped:
 * the agent is reading back).
 */
export function mergePage(c: Conv, page: HistoryPage): void {
  const items = page.items.slice().reverse();
  if (!c.loaded) {
    const newer = c.messages.filter((m) => m.seq > (items.at(-1)?.seq ?? 0));
    c.messages = [...items, ...newer];
    c.loaded = true;
  } else {
    const first = c.messages[0]?.seq ?? Number.POSITIVE_INFINITY;
    c.messages = [...items.filter((m) => m.seq < first), ...c.messages].slice(0, MAX_HELD_MESSAGES);
  }
  c.older = page.next;
  c.lastSeq = Math.max(c.lastSeq, c.messages.at(-1)?.seq ?? 0);
}
