/**
 * The error-code registry and its documentation: every code and close code the broker can put on the
 * wire is in docs/PROTOCOL.md with the status the code gives it, and the error classes carry what the
 * gateway maps onto frames and HTTP responses.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BusyError,
  ERROR_CODES,
  type ErrorCode,
  isErrorCode,
  SwitchboardError,
  toSwitchboardError,
} from '../../src/protocol/errors.js';
import { CLOSE_CODES } from '../../src/protocol/frames.js';

// Compiled to dist/test/unit/, so the project root is three levels up.
const DOC_PATH = fileURLToPath(new URL('../../../docs/PROTOCOL.md', import.meta.url));
const doc = readFileSync(DOC_PATH, 'utf8');

/** Close code for a connection dropped without a close frame (RFC 6455 §7.1.5); never sent, only seen. */
const ABNORMAL_CLOSURE = 1006;

/** The lines of the `## <title>` section, up to the next level-2 heading. */
function section(title: string): string[] {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.trim() === `## ${title}`);
  assert.ok(start >= 0, `PROTOCOL.md has a "## ${title}" section`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** The cells of the Markdown table rows of a section (header and separator rows included). */
function tableRows(lines: string[]): string[][] {
  return lines
    .filter((l) => l.trim().startsWith('|'))
    .map((l) =>
      l
        .trim()
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((c) => c.trim()),
    );
}

const errorRows = tableRows(section('Errors'));
const closeRows = tableRows(section('Close codes'));
const errorCodes = Object.keys(ERROR_CODES) as ErrorCode[];

test('errors - every code is documented in PROTOCOL.md', () => {
  for (const code of errorCodes) {
    assert.ok(doc.includes(`\`${code}\``), `\`${code}\` appears in backticks in PROTOCOL.md`);
    const row = errorRows.find((cells) => cells[0] === `\`${code}\``);
    assert.ok(row, `the error table has a row for \`${code}\``);
    assert.equal(row[1], String(ERROR_CODES[code].http), `the row of \`${code}\` gives its HTTP status`);
  }
});

test('errors - the error table lists no code missing from ERROR_CODES', () => {
  const documented = errorRows.map((cells) => cells[0] ?? '').filter((c) => /^`[a-z_0-9]+`$/.test(c));
  assert.equal(documented.length, errorCodes.length, 'one row per code');
  for (const cell of documented) {
    assert.ok(isErrorCode(cell.slice(1, -1)), `${cell} is a code of ERROR_CODES`);
  }
});

test('errors - every close code is documented in PROTOCOL.md', () => {
  const documented = new Set(closeRows.map((cells) => cells[0]));
  for (const [name, code] of Object.entries(CLOSE_CODES)) {
    assert.ok(documented.has(String(code)), `the close-code table has a row for ${code} (${name})`);
    const row = closeRows.find((cells) => cells[0] === String(code));
    assert.equal(row?.[1], `\`${name}\``, `the row of ${code} names it \`${name}\``);
  }
  assert.ok(documented.has(String(ABNORMAL_CLOSURE)), 'the close-code table has a row for 1006');
});

test('errors - the close-code table lists no code the broker does not use', () => {
  const known = new Set<number>([...Object.values(CLOSE_CODES), ABNORMAL_CLOSURE]);
  const documented = closeRows.map((cells) => cells[0] ?? '').filter((c) => /^\d+$/.test(c));
  assert.equal(documented.length, known.size, 'one row per close code');
  for (const cell of documented) assert.ok(known.has(Number(cell)), `${cell} is a close code of the broker`);
});

test('errors - SwitchboardError carries code, name, cause, retryAfterMs and httpStatus', () => {
  const cause = new Error('driver said no');
  const err = new SwitchboardError('unavailable', 'no owner', { cause, retryAfterMs: 250 });
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'SwitchboardError');
  assert.equal(err.code, 'unavailable');
  assert.equal(err.message, 'no owner');
  assert.equal(err.cause, cause);
  assert.equal(err.retryAfterMs, 250);
  assert.equal(err.httpStatus, 503);

  const plain = new SwitchboardError('forbidden', 'not yours');
  assert.equal(plain.retryAfterMs, undefined);
  assert.equal('cause' in plain, false, 'no cause property when none was given');
  assert.equal(plain.httpStatus, 403);
});

test('errors - httpStatus follows the registry for every code', () => {
  for (const code of errorCodes) {
    assert.equal(new SwitchboardError(code, 'x').httpStatus, ERROR_CODES[code].http, code);
  }
});

test('errors - BusyError is a busy SwitchboardError with its queue, capacity and retry-after', () => {
  const err = new BusyError('shard 7 mailbox', 256, 100);
  assert.ok(err instanceof SwitchboardError);
  assert.equal(err.name, 'BusyError');
  assert.equal(err.code, 'busy');
  assert.equal(err.queue, 'shard 7 mailbox');
  assert.equal(err.capacity, 256);
  assert.equal(err.retryAfterMs, 100);
  assert.equal(err.httpStatus, 503);
  assert.match(err.message, /shard 7 mailbox is full \(capacity 256\)/);
});

test('errors - toSwitchboardError keeps ours and maps anything else to internal', () => {
  const busy = new BusyError('history writer', 10, 50);
  assert.equal(toSwitchboardError(busy), busy);

  const boom = new TypeError('boom');
  const wrapped = toSwitchboardError(boom);
  assert.ok(wrapped instanceof SwitchboardError);
  assert.equal(wrapped.code, 'internal');
  assert.equal(wrapped.httpStatus, 500);
  assert.equal(wrapped.cause, boom);
  assert.equal(wrapped.retryAfterMs, undefined);
  assert.doesNotMatch(wrapped.message, /boom/, 'the internal detail stays out of the wire message');

  for (const thrown of ['a string', 42, null, undefined, { code: 'busy' }]) {
    const e = toSwitchboardError(thrown);
    assert.equal(e.code, 'internal', `${String(thrown)} maps to internal`);
    assert.equal(e.cause, thrown);
  }
});

test('errors - isErrorCode accepts registry keys only', () => {
  for (const code of errorCodes) assert.equal(isErrorCode(code), true, code);
  for (const value of ['toString', 'constructor', '__proto__', 'BUSY', '', 503, null, undefined]) {
    assert.equal(isErrorCode(value), false, String(value));
  }
});
