/**
 * The support desk's client frames (issue #17, docs/PROTOCOL.md "Reception frames"), validated
 * like every other frame: `leave` (the leave-a-message form, outside business hours) and `handoff`
 * (the visitor asks the bot for a person). Both are visitor frames. Their server frames
 * (`desk_closed`, `requeued`, `handoff`) are built by src/reception/ and actors/reception/.
 */
import { requireId as id, invalid, optionalRef, optionalText as text } from './fields.js';

/** The name and email fields of the form. */
export const MAX_LEAVE_CONTACT_CHARS = 200;

/** Visitor: leaves a message while the desk is closed (the form of `desk_closed`). */
export interface LeaveFrame {
  type: 'leave';
  conv: string;
  body: string;
  name?: string;
  email?: string;
  ref?: string;
}

/** Visitor: asks for a person instead of the bot. */
export interface HandoffFrame {
  type: 'handoff';
  conv: string;
  ref?: string;
}

export type ReceptionClientFrame = LeaveFrame | HandoffFrame;

/** Desk frames only a visitor socket may send. */
export const RECEPTION_VISITOR_FRAMES: readonly string[] = ['leave', 'handoff'];

/**
 * A desk frame of type `type`, checked; undefined when `type` is not a desk frame. The left message's
 * own bound (the tenant's `leaveMessage.maxChars`) is checked by the desk; here only the body limit.
 */
export function parseReceptionFrame(
  o: Record<string, unknown>,
  type: string,
  maxBodyChars: number,
): ReceptionClientFrame | undefined {
  const ref = optionalRef(o);
  switch (type) {
    case 'leave': {
      const conv = id(o, 'conv');
      const body = text(o, 'body', maxBodyChars);
      if (body === undefined || body.trim() === '') throw invalid('body must be a non-blank string');
      const frame: LeaveFrame = { type, conv, body, ...ref };
      const name = text(o, 'name', MAX_LEAVE_CONTACT_CHARS);
      const email = text(o, 'email', MAX_LEAVE_CONTACT_CHARS);
      if (name !== undefined && name.trim() !== '') frame.name = name;
      if (email !== undefined && email.trim() !== '') frame.email = email;
      return frame;
    }
    case 'handoff':
      return { type, conv: id(o, 'conv'), ...ref };
    default:
      return undefined;
  }
}

// ---- server -> client ----------------------------------------------------------------------------

/** The desk's server frames (built only by the functions below). */
export const RECEPTION_SERVER_FRAMES: readonly string[] = ['desk_closed', 'requeued', 'handoff'];

/** To a visitor outside business hours: the automatic message and the leave-a-message form. */
export function deskClosedFrame(conv: string, message: string, nextOpen: number | null, maxChars: number) {
  return { type: 'desk_closed', conv, message, nextOpen, leave: { maxChars } };
}

/** To a visitor whose agent did not answer in time: back to the front of the queue. */
export function requeuedFrame(conv: string) {
  return { type: 'requeued', conv, reason: 'no_reply' };
}

/** To the agent who gets a conversation the bot handed over. */
export function handoffFrame(conv: string, summary: string | null, by: string) {
  return { type: 'handoff', conv, summary, by };
}
