// PII masking for what agents see: phone numbers, resident ID numbers, bank card numbers, e-mail.
// Pure CPU code with no I/O, so it runs on the piscina pool (see text-worker.ts) and in unit tests.

import { isBankCard, isCnMobile, isNationalId15, isNationalId18 } from './pii-checks.js';

/** What a finding is: a phone number, a resident ID number, a bank card number or an e-mail address. */
export type PiiKind = 'phone' | 'national_id' | 'bank_card' | 'email';

/**
 * One value found. `start`/`end` (exclusive) are UTF-16 indices into the original text, so
 * `text.slice(start, end)` is the value as written. `value` is its normal form: half-width ASCII,
 * separators removed, a leading '+' kept for phones; e-mail lower-cased; an ID's check 'X' upper-cased.
 */
export interface PiiFound {
  readonly kind: PiiKind;
  readonly start: number;
  readonly end: number;
  readonly value: string;
}

/** The outcome of `maskPii`. */
export interface PiiResult {
  readonly text: string;
  readonly found: PiiFound[];
}

/** International numbers (+CC...) are 8-15 digits, country code included (E.164 allows 15). */
export const INTL_PHONE_MIN_DIGITS = 8;
export const INTL_PHONE_MAX_DIGITS = 15;
// Nothing we detect is longer than a 19-digit card, so longer group ranges are not examined.
const MAX_CANDIDATE_DIGITS = 19;
// Groups of a number may be split by up to this many spaces or dashes ("138 - 1234 - 5678").
const MAX_SEPARATOR_CHARS = 2;

// Cheap pre-check: text without a digit or an at-sign (half- or full-width) has nothing to find.
const MAY_CONTAIN_PII = /[0-9０-９@＠]/;
// Matched on the normalised text. The lookbehind keeps a match from starting inside a longer token.
const EMAIL =
  /(?<![A-Za-z0-9_%+-])[A-Za-z0-9_%+-][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![A-Za-z0-9])/g;

/**
 * Maps full-width ASCII (U+FF01-U+FF5E, e.g. '１', '＋', '＠'), the ideographic space and Unicode
 * dashes to their ASCII forms. Each replaced character is one UTF-16 unit and so is its replacement,
 * so indices in the result are indices in the original.
 */
export function normalizeForPii(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xff01 && c <= 0xff5e) out += String.fromCharCode(c - 0xfee0);
    else if (c === 0x3000) out += ' ';
    else if ((c >= 0x2010 && c <= 0x2015) || c === 0x2212) out += '-';
    else out += text[i];
  }
  return out;
}

interface Candidate {
  readonly found: PiiFound;
  /** Replacement for text.slice(found.start, found.end), computed from the original characters. */
  readonly mask: (original: string) => string;
}

/**
 * Finds phone numbers (mainland mobiles with optional +86 / 0086, and +CC international numbers of
 * 8-15 digits), 18- and 15-character resident ID numbers (province, birth date and check character
 * validated), Luhn-valid bank card numbers of 13-19 digits, and e-mail addresses; masks each one
 * keeping a hint: phone 138****5678, ID 1101**********1234, card **** **** **** 1234 (separators
 * kept), e-mail a***@example.com. Full-width digits and letters are detected; masked characters
 * become '*', the others are kept as written. When candidates overlap the longer one wins (an e-mail
 * always beats the digits inside it). A number glued to ASCII letters ("SF1402938475102") is not PII.
 * `found` is ordered by `start`. With nothing found the input string itself is returned.
 */
export function maskPii(text: string): PiiResult {
  if (!MAY_CONTAIN_PII.test(text)) return { text, found: [] };
  const norm = normalizeForPii(text);
  const emails = findEmails(norm);
  const numbers = findNumbers(norm).sort(
    (a, b) => b.found.end - b.found.start - (a.found.end - a.found.start) || a.found.start - b.found.start,
  );
  // Characters already claimed, so each overlap check costs the candidate's length, not the number
  // of candidates chosen so far (a hostile run of digit groups yields thousands).
  const taken = new Uint8Array(text.length);
  const chosen: Candidate[] = [];
  for (const candidate of [...emails, ...numbers]) {
    const { start, end } = candidate.found;
    if (taken.subarray(start, end).includes(1)) continue;
    taken.fill(1, start, end);
    chosen.push(candidate);
  }
  if (chosen.length === 0) return { text, found: [] };
  chosen.sort((a, b) => a.found.start - b.found.start);
  let masked = '';
  let at = 0;
  for (const { found, mask } of chosen) {
    masked += text.slice(at, found.start) + mask(text.slice(found.start, found.end));
    at = found.end;
  }
  return { text: masked + text.slice(at), found: chosen.map((c) => c.found) };
}

function findEmails(norm: string): Candidate[] {
  const out: Candidate[] = [];
  for (const m of norm.matchAll(EMAIL)) {
    const start = m.index;
    const at = m[0].indexOf('@');
    out.push({
      found: { kind: 'email', start, end: start + m[0].length, value: m[0].toLowerCase() },
      // One character of the local part is a hint; a one-character local part would be the whole of it.
      mask: (original) => (at > 1 ? original.slice(0, 1) : '') + '***' + original.slice(at),
    });
  }
  return out;
}

interface Group {
  readonly start: number;
  readonly end: number;
  readonly chars: string;
}

const isDigit = (ch: string | undefined): boolean => ch !== undefined && ch >= '0' && ch <= '9';
const isAsciiAlnum = (ch: string | undefined): boolean => ch !== undefined && /^[A-Za-z0-9]$/.test(ch);

// Splits the normalised text into runs of digit groups ("+86 138-1234 5678", "1101...X") and
// collects every group range of a run that validates as a phone, ID or card.
function findNumbers(norm: string): Candidate[] {
  const out: Candidate[] = [];
  let i = 0;
  while (i < norm.length) {
    const ch = norm[i];
    const plus = ch === '+' && isDigit(norm[i + 1]);
    if (!plus && !isDigit(ch)) {
      i++;
      continue;
    }
    const groups: Group[] = [];
    let pos = plus ? i + 1 : i;
    for (;;) {
      const start = pos;
      while (isDigit(norm[pos])) pos++;
      let chars = norm.slice(start, pos);
      // A trailing X/x belongs to an ID number only when no other letter or digit follows it.
      if ((norm[pos] === 'X' || norm[pos] === 'x') && !isAsciiAlnum(norm[pos + 1])) {
        chars += 'X';
        pos++;
        groups.push({ start, end: pos, chars });
        break;
      }
      groups.push({ start, end: pos, chars });
      let k = pos;
      while (k - pos < MAX_SEPARATOR_CHARS && (norm[k] === ' ' || norm[k] === '-')) k++;
      if (k === pos || !isDigit(norm[k])) break;
      pos = k;
    }
    // Digits glued to letters are codes (order, tracking, SKU), not PII: drop the glued groups.
    if (isAsciiAlnum(norm[i - 1])) groups.shift();
    if (isAsciiAlnum(norm[pos])) groups.pop();
    collectCandidates(groups, plus && !isAsciiAlnum(norm[i - 1]) ? i : -1, out);
    i = pos;
    while (isAsciiAlnum(norm[i])) i++;
  }
  return out;
}

function collectCandidates(groups: readonly Group[], plusAt: number, out: Candidate[]): void {
  for (let first = 0; first < groups.length; first++) {
    let chars = '';
    for (let last = first; last < groups.length; last++) {
      chars += groups[last]!.chars;
      if (chars.length > MAX_CANDIDATE_DIGITS) break;
      const plus = first === 0 && plusAt >= 0;
      const hidden = classify(chars, plus);
      if (hidden === undefined) continue;
      const start = plus ? plusAt : groups[first]!.start;
      const end = groups[last]!.end;
      out.push({
        found: { kind: hidden.kind, start, end, value: (plus ? '+' : '') + chars },
        mask: (original) => maskDigits(original, hidden.keepHead, hidden.keepTail),
      });
    }
  }
}

interface Classified {
  readonly kind: PiiKind;
  /** Digits (or X) left visible at the start and at the end; all others become '*'. */
  readonly keepHead: number;
  readonly keepTail: number;
}

function classify(chars: string, plus: boolean): Classified | undefined {
  const n = chars.length;
  if (chars.endsWith('X')) return !plus && isNationalId18(chars) ? nationalId(4, 4) : undefined;
  if (plus) {
    // +86 then a mobile: 138****5678 after the country code.
    if (n === 13 && chars.startsWith('86') && isCnMobile(chars.slice(2))) return phone(5, 4);
    if (n >= INTL_PHONE_MIN_DIGITS && n <= INTL_PHONE_MAX_DIGITS) return phone(2, n >= 10 ? 4 : 2);
    return undefined;
  }
  if (n === 18 && isNationalId18(chars)) return nationalId(4, 4);
  if (isBankCard(chars)) return { kind: 'bank_card', keepHead: 0, keepTail: 4 };
  if (n === 15 && isNationalId15(chars)) return nationalId(4, 3);
  if (n === 11 && isCnMobile(chars)) return phone(3, 4);
  if (n === 15 && chars.startsWith('0086') && isCnMobile(chars.slice(4))) return phone(7, 4);
  return undefined;
}

const phone = (keepHead: number, keepTail: number): Classified => ({ kind: 'phone', keepHead, keepTail });
const nationalId = (keepHead: number, keepTail: number): Classified => ({
  kind: 'national_id',
  keepHead,
  keepTail,
});

// Masks digits (and a final X) of `original` by position, leaving separators and '+' as written.
function maskDigits(original: string, keepHead: number, keepTail: number): string {
  const norm = normalizeForPii(original);
  let total = 0;
  for (const ch of norm) if (isDigit(ch) || ch === 'X' || ch === 'x') total++;
  let seen = 0;
  let out = '';
  for (let i = 0; i < norm.length; i++) {
    const ch = norm[i]!;
    if (!isDigit(ch) && ch !== 'X' && ch !== 'x') {
      out += original[i];
      continue;
    }
    out += seen < keepHead || seen >= total - keepTail ? original[i] : '*';
    seen++;
  }
  return out;
}
