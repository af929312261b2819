/**
 * What happens to a chat text on its way in: the tenant's content policy (or the built-in word list)
 * and PII masking for the agents' view, both on the worker pool, micro-batched with every other text
 * being screened. Also the agents' view of stored rows (history and sync read by agents).
 */
import type { EncodedBody, TextPool } from '../pool/text-pool.js';
import type { MessageRow } from '../store/types.js';
import type { ContentPolicies } from './policies.js';

export interface Screened {
  /** The text to store and show the visitor (sensitive words masked). */
  text: string;
  /** The text agents see: `text` with phone numbers, ID and card numbers and e-mail addresses masked. */
  agentText: string;
  blocked: boolean;
  review: boolean;
  /** The policy words found (normalised), for the audit of a block. */
  words: string[];
  /** `text` encoded for storage, when the pool does that with the screen (TextPoolOptions.storeScreened). */
  stored?: EncodedBody;
}

/**
 * Screens one text in a single pool task (policy or word list, then PII masking). Rejects BusyError
 * when the pool is full, or when the tenant's policy cannot load.
 */
export async function screenText(
  pool: Pick<TextPool, 'screen'>,
  policies: Pick<ContentPolicies, 'policyFor'>,
  tenant: string,
  body: string,
): Promise<Screened> {
  const policy = await policies.policyFor(tenant);
  const verdict = await pool.screen(tenant, policy, body);
  const words = [...new Set(verdict.hits.map((h) => h.word))];
  // The pool's answers are copies: most texts come back unchanged, and then the row, the actors'
  // recent windows and the history cache hold one string instead of three (issue #13: live heap).
  const text = verdict.text === body ? body : verdict.text;
  return {
    text,
    agentText: verdict.agentText === text ? text : verdict.agentText,
    blocked: verdict.blocked,
    review: verdict.review,
    words,
    ...(verdict.stored !== undefined ? { stored: verdict.stored } : {}),
  };
}

/** The agents' view of rows: a row's own agentBody when it has one, else masked on the pool now. */
export function agentBodies(pool: Pick<TextPool, 'pii'>, rows: readonly MessageRow[]): Promise<string[]> {
  return Promise.all(
    rows.map((row) => (row.agentBody !== undefined ? row.agentBody : pool.pii(row.body).then((r) => r.text))),
  );
}
