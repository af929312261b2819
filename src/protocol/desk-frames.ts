/**
 * The support-desk frames of issue #17 (docs/PROTOCOL.md, "Support desk"): private notes, recall and
 * edit, labels, canned replies. Validated here, answered by src/desk/gateway-frames.ts.
 */
import { SwitchboardError } from './errors.js';
import { requireId as id, invalid, optionalRef as ref } from './fields.js';

/** Agent: a private note in `conv` (never shown to the visitor). Answered with `ack`, like `send`. */
export interface NoteFrame {
  type: 'note';
  conv: string;
  cmid: string;
  body: string;
}

/** Visitor or agent: recalls its own message `seq`. Answered with `ack` (the recall row's seq). */
export interface RecallFrame {
  type: 'recall';
  conv: string;
  cmid: string;
  seq: number;
}

/** Agent: replaces the body of its own message `seq`. Answered with `ack` (the edit row's seq). */
export interface EditFrame {
  type: 'edit';
  conv: string;
  cmid: string;
  seq: number;
  body: string;
}

/** Agent: adds and removes labels of `conv`. Answered `done {op: 'label', labels}`. */
export interface LabelFrame {
  type: 'label';
  conv: string;
  add: string[];
  remove: string[];
  ref?: string;
}

/** Agent: the canned reply `shortcut` filled in for `conv`. Answered with a `canned` frame. */
export interface CannedRequestFrame {
  type: 'canned';
  conv: string;
  shortcut: string;
  ref?: string;
}

export type DeskClientFrame = NoteFrame | RecallFrame | EditFrame | LabelFrame | CannedRequestFrame;

/** The answer to `canned`: the reply's text with its placeholders filled. */
export interface CannedFrame {
  type: 'canned';
  conv: string;
  shortcut: string;
  title: string;
  body: string;
  /** Placeholders that had no value (rendered empty). */
  missing: string[];
  ref?: string;
}

/** Pushed to the conversation's agent when its labels change. */
export interface LabelsFrame {
  type: 'labels';
  conv: string;
  labels: string[];
}

/**
 * Pushed to the visitor in place of an agent's private note (or a change of one): seq `seq` exists and
 * is not for this reader. Content-free: no body, sender, cmid or time.
 */
export interface SkipFrame {
  type: 'skip';
  conv: string;
  seq: number;
}

export type DeskServerFrame = CannedFrame | LabelsFrame | SkipFrame;

/** Frames of this module only an agent may send (`recall` is for both). */
export const DESK_AGENT_ONLY_FRAMES = ['note', 'edit', 'label', 'canned'] as const;
/** Labels named in one `label` frame, at most (the tenant's own bounds are checked after). */
export const MAX_LABELS_PER_FRAME = 64;
/** Canned reply shortcuts: what an agent types after `/`. */
export const SHORTCUT_PATTERN = /^[a-z0-9_-]{1,32}$/;

function seq(o: Record<string, unknown>): number {
  const v = o['seq'];
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw invalid('seq must be a positive integer');
  return v as number;
}

/** A message body, checked as `send` checks it. */
export function requireBody(o: Record<string, unknown>, maxBodyChars: number): string {
  const body = o['body'];
  if (typeof body !== 'string') throw invalid('body must be a string');
  if (body.trim().length === 0) throw invalid('body must not be empty');
  if (!body.isWellFormed()) throw new SwitchboardError('invalid_utf8', 'body holds a lone UTF-16 surrogate');
  if (body.length > maxBodyChars)
    throw new SwitchboardError('payload_too_large', `body must be at most ${maxBodyChars} characters`);
  return body;
}

function labelList(o: Record<string, unknown>, field: string): string[] {
  const v = o[field] ?? [];
  if (!Array.isArray(v) || v.length > MAX_LABELS_PER_FRAME || !v.every((x) => typeof x === 'string'))
    throw invalid(`${field} must be a list of at most ${MAX_LABELS_PER_FRAME} strings`);
  return v as string[];
}

/** The desk frame `o` (of type `type`), validated; undefined when `type` is not a desk frame. */
export function parseDeskFrame(
  o: Record<string, unknown>,
  type: string,
  maxBodyChars: number,
): DeskClientFrame | undefined {
  switch (type) {
    case 'note':
      return { type, conv: id(o, 'conv'), cmid: id(o, 'cmid'), body: requireBody(o, maxBodyChars) };
    case 'recall':
      return { type, conv: id(o, 'conv'), cmid: id(o, 'cmid'), seq: seq(o) };
    case 'edit':
      return {
        type,
        conv: id(o, 'conv'),
        cmid: id(o, 'cmid'),
        seq: seq(o),
        body: requireBody(o, maxBodyChars),
      };
    case 'label': {
      const frame: LabelFrame = {
        type,
        conv: id(o, 'conv'),
        add: labelList(o, 'add'),
        remove: labelList(o, 'remove'),
        ...ref(o),
      };
      if (frame.add.length === 0 && frame.remove.length === 0) throw invalid('give add, remove or both');
      return frame;
    }
    case 'canned': {
      const shortcut = o['shortcut'];
      if (typeof shortcut !== 'string' || !SHORTCUT_PATTERN.test(shortcut))
        throw invalid('shortcut must be 1-32 characters of a-z 0-9 _ -');
      return { type, conv: id(o, 'conv'), shortcut, ...ref(o) };
    }
    default:
      return undefined;
  }
}
