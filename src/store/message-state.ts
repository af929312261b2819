/**
 * Recall and edit on read (issue #17): message rows are insert-only, so a recalled or edited message is
 * shown through its MessageState. The same functions serve the Cassandra reads and the history cache, so
 * every reader sees one current state.
 */
import type { MessageRow, MessageState } from './types.js';

/** `row` as it reads now: recalled (body empty, no card) or edited (the current body). */
export function applyState(row: MessageRow, state: MessageState | undefined): MessageRow {
  if (state === undefined) return row;
  const { agentBody: _stale, ...rest } = row;
  const next: MessageRow = { ...rest, editSeqs: state.editSeqs };
  if (state.state === 'recalled') {
    next.body = '';
    next.recalled = true;
    delete next.edited;
    delete next.card;
  } else {
    next.body = state.body ?? '';
    next.edited = true;
    if (state.agentBody !== undefined) next.agentBody = state.agentBody;
  }
  return next;
}

/** A copy of `row` without its effects (caches keep this: the effects hold the replaced body). */
export function withoutEffects(row: MessageRow): MessageRow {
  const { effects: _written, ...rest } = row;
  return rest;
}

/** The rows with each state applied to the row of its seq (a new array; rows without a state unchanged). */
export function applyStates(rows: readonly MessageRow[], states: readonly MessageState[]): MessageRow[] {
  if (states.length === 0) return rows.slice();
  const bySeq = new Map(states.map((s) => [s.seq, s]));
  return rows.map((r) => applyState(r, bySeq.get(r.seq)));
}
