/**
 * The per-tenant `desk` section of the tenants file (issue #17, items 1-4): canned replies, labels,
 * recall and edit. Every number here is a bound with a test at the limit (test/integration/desk-*.test.ts).
 */
import { z } from 'zod';

export const DEFAULT_RECALL_WINDOW_S = 120;
/** Recall window bounds: at least a second, at most a day (a recall is a correction, not a purge). */
export const MIN_RECALL_WINDOW_S = 1;
export const MAX_RECALL_WINDOW_S = 86_400;
export const DEFAULT_MAX_CANNED_PER_TENANT = 500;
export const MAX_CANNED_PER_TENANT = 10_000;
export const DEFAULT_MAX_CANNED_PER_AGENT = 100;
export const MAX_CANNED_PER_AGENT = 1_000;
export const DEFAULT_MAX_LABELS_PER_CONVERSATION = 16;
export const MAX_LABELS_PER_CONVERSATION = 64;
export const DEFAULT_MAX_LABEL_CHARS = 32;
export const MAX_LABEL_CHARS = 64;
export const DEFAULT_MAX_EDIT_CHARS = 4000;
export const MAX_EDIT_CHARS = 16_000;
export const DEFAULT_MAX_EDITS_PER_MESSAGE = 10;
export const MAX_EDITS_PER_MESSAGE = 100;

const int = (min: number, max: number) =>
  z.number().int('must be an integer').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

export const deskSchema = z.strictObject({
  /** How long after sending a sender may recall its own message, seconds. */
  recallWindowS: int(MIN_RECALL_WINDOW_S, MAX_RECALL_WINDOW_S).optional(),
  /** Canned replies shared by the whole tenant. */
  maxCannedPerTenant: int(1, MAX_CANNED_PER_TENANT).optional(),
  /** Canned replies of one agent (besides the tenant's). */
  maxCannedPerAgent: int(1, MAX_CANNED_PER_AGENT).optional(),
  maxLabelsPerConversation: int(1, MAX_LABELS_PER_CONVERSATION).optional(),
  maxLabelChars: int(1, MAX_LABEL_CHARS).optional(),
  /** The longest edited body, characters (also bounded by the gateway's maxBodyChars). */
  maxEditChars: int(1, MAX_EDIT_CHARS).optional(),
  /** Edits of one message, at most. */
  maxEditsPerMessage: int(1, MAX_EDITS_PER_MESSAGE).optional(),
});

export type DeskSettings = Required<z.infer<typeof deskSchema>>;

export const BUILTIN_DESK_SETTINGS: Readonly<DeskSettings> = Object.freeze({
  recallWindowS: DEFAULT_RECALL_WINDOW_S,
  maxCannedPerTenant: DEFAULT_MAX_CANNED_PER_TENANT,
  maxCannedPerAgent: DEFAULT_MAX_CANNED_PER_AGENT,
  maxLabelsPerConversation: DEFAULT_MAX_LABELS_PER_CONVERSATION,
  maxLabelChars: DEFAULT_MAX_LABEL_CHARS,
  maxEditChars: DEFAULT_MAX_EDIT_CHARS,
  maxEditsPerMessage: DEFAULT_MAX_EDITS_PER_MESSAGE,
});
