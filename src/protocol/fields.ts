/**
 * The field checks every client frame shares (frames.ts and the desk and reception frames that it
 * imports). A module of its own so that those can use them without importing frames.ts: that cycle
 * would leave one of them half-initialised depending on which is loaded first.
 */
import { SwitchboardError } from './errors.js';

/** Identifiers (tenant, user, conversation, cmid): 1–64 chars of letters, digits, `_ - . :`. */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

export function invalid(message: string): SwitchboardError {
  return new SwitchboardError('invalid_field', message);
}

export function requireId(obj: Record<string, unknown>, field: string): string {
  const v = obj[field];
  if (typeof v !== 'string') throw invalid(`${field} must be a string`);
  if (!ID_PATTERN.test(v)) throw invalid(`${field} must be 1-64 characters of A-Z a-z 0-9 _ - . :`);
  return v;
}

export function optionalRef(obj: Record<string, unknown>): { ref?: string } {
  return obj['ref'] === undefined ? {} : { ref: requireId(obj, 'ref') };
}

/** A string field, absent allowed; well-formed UTF-16 and at most `max` characters. */
export function optionalText(obj: Record<string, unknown>, field: string, max: number): string | undefined {
  const v = obj[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(`${field} must be a string`);
  if (!v.isWellFormed()) throw new SwitchboardError('invalid_utf8', `${field} holds a lone UTF-16 surrogate`);
  if (v.length > max)
    throw new SwitchboardError('payload_too_large', `${field} must be at most ${max} characters`);
  return v;
}
