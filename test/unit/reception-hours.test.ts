/**
 * Business hours and the desk settings (issue #17 items 5-7): open / closed at given instants in IANA
 * zones (daylight saving included), holidays, the next opening, and every bound of the `reception` section
 * of the tenants file at its limit; the bot answer's checks at their limits.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { ID_PATTERN, parseClientFrame } from '../../src/protocol/frames.js';
import { isOpen, localTime, nextOpening, zonedInstant } from '../../src/reception/hours.js';
import { parseBotAnswer } from '../../src/reception/service.js';
import {
  type HoursSettings,
  MAX_BOT_REPLY_BYTES,
  MAX_BOT_SUMMARY_CHARS,
  MAX_BOT_TIMEOUT_MS,
  MAX_HOLIDAYS,
  MAX_REASSIGN_S,
  MAX_SCHEDULE_ENTRIES,
  MIN_BOT_TIMEOUT_MS,
  RECEPTION_SECTION,
  receptionSettingsOf,
} from '../../src/reception/settings.js';
import { parseTenantsYaml, TenantsConfigError } from '../../src/tenants.js';
import { SimulatedClock } from '../fixtures/simulated-clock.js';

function hours(section: unknown): HoursSettings {
  const h = receptionSettingsOf(RECEPTION_SECTION.parse({ hours: section })).hours;
  assert.ok(h);
  return h;
}

const BERLIN_WEEKDAYS = hours({
  timeZone: 'Europe/Berlin',
  weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], open: '09:00', close: '17:30' }],
  holidays: ['2026-12-24'],
});

test('reception hours - open and closed by the local wall clock of the zone', () => {
  // Wednesday 2026-12-02: Berlin is UTC+1 in winter.
  assert.equal(isOpen(BERLIN_WEEKDAYS, Date.UTC(2026, 11, 2, 7, 59)), false, '08:59 local');
  assert.equal(isOpen(BERLIN_WEEKDAYS, Date.UTC(2026, 11, 2, 8, 0)), true, '09:00 local');
  assert.equal(isOpen(BERLIN_WEEKDAYS, Date.UTC(2026, 11, 2, 16, 29)), true, '17:29 local');
  assert.equal(isOpen(BERLIN_WEEKDAYS, Date.UTC(2026, 11, 2, 16, 30)), false, '17:30 local: closed');
  // Saturday.
  assert.equal(isOpen(BERLIN_WEEKDAYS, Date.UTC(2026, 11, 5, 10, 0)), false);
  // A holiday on a Thursday.
  assert.equal(isOpen(BERLIN_WEEKDAYS, Date.UTC(2026, 11, 24, 10, 0)), false);
  // Summer: UTC+2, so 09:00 local is 07:00 UTC.
  assert.equal(isOpen(BERLIN_WEEKDAYS, Date.UTC(2026, 6, 1, 7, 0)), true);
  assert.equal(isOpen(BERLIN_WEEKDAYS, Date.UTC(2026, 6, 1, 6, 59)), false);
});

test('reception hours - the local date follows the zone, not UTC', () => {
  // 2026-12-31 23:30 UTC is already 2027-01-01 in Shanghai (UTC+8) and still 2026 in New York.
  const at = Date.UTC(2026, 11, 31, 23, 30);
  assert.deepEqual(localTime('Asia/Shanghai', at), {
    date: '2027-01-01',
    weekday: 'fri',
    minute: 7 * 60 + 30,
  });
  assert.equal(localTime('America/New_York', at).date, '2026-12-31');
  assert.equal(localTime('Asia/Kolkata', at).minute, 5 * 60, 'a half-hour zone');
});

test('reception hours - the next opening, across a weekend, a holiday and a DST change', () => {
  const clock = new SimulatedClock(Date.UTC(2026, 11, 4, 17, 0)); // Friday 18:00 Berlin
  assert.equal(nextOpening(BERLIN_WEEKDAYS, clock.now()), Date.UTC(2026, 11, 7, 8, 0), 'Monday 09:00');
  clock.advance(19 * 86_400_000); // Wednesday 2026-12-23 18:00: the 24th is a holiday
  assert.equal(nextOpening(BERLIN_WEEKDAYS, clock.now()), Date.UTC(2026, 11, 25, 8, 0));
  // Saturday 2027-03-27 in Berlin; clocks go forward on Sunday the 28th: Monday 09:00 is 07:00 UTC.
  assert.equal(nextOpening(BERLIN_WEEKDAYS, Date.UTC(2027, 2, 27, 12, 0)), Date.UTC(2027, 2, 29, 7, 0));
  assert.equal(zonedInstant('America/New_York', '2026-07-01', 9 * 60), Date.UTC(2026, 6, 1, 13, 0));
  // No entries: never opens.
  assert.equal(nextOpening(hours({ timeZone: 'UTC', weekly: [] }), clock.now()), null);
});

function receptionYaml(section: string): string {
  return `version: 1\ntenants:\n  acme:\n    reception:\n${section
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n')}\n`;
}

function refused(yaml: string, pattern: RegExp): void {
  assert.throws(
    () => parseTenantsYaml(yaml),
    (err: unknown) => {
      assert.ok(err instanceof TenantsConfigError);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

test('reception settings - schedule entries and holidays at their limits', () => {
  const entry = '  - { days: [mon], open: "09:00", close: "10:00" }';
  const entries = (n: number) =>
    `hours:\n  timeZone: UTC\n  weekly:\n${Array(n).fill(`  ${entry}`).join('\n')}`;
  parseTenantsYaml(receptionYaml(entries(MAX_SCHEDULE_ENTRIES)));
  refused(receptionYaml(entries(MAX_SCHEDULE_ENTRIES + 1)), /reception\.hours\.weekly/);
  const days = (n: number) =>
    Array.from(
      { length: n },
      (_, i) => `"${new Date(Date.UTC(2026, 0, 1) + i * 86_400_000).toISOString().slice(0, 10)}"`,
    );
  const holidays = (n: number) =>
    `hours:\n  timeZone: UTC\n  weekly: []\n  holidays: [${days(n).join(', ')}]`;
  parseTenantsYaml(receptionYaml(holidays(MAX_HOLIDAYS)));
  refused(receptionYaml(holidays(MAX_HOLIDAYS + 1)), /reception\.hours\.holidays/);
});

test('reception settings - bad zones, times and bounds are refused with the path', () => {
  refused(receptionYaml('hours: { timeZone: Mars/Olympus, weekly: [] }'), /IANA time zone/);
  refused(
    receptionYaml('hours: { timeZone: UTC, weekly: [{ days: [mon], open: "10:00", close: "09:00" }] }'),
    /close must be after open/,
  );
  refused(
    receptionYaml('hours: { timeZone: UTC, weekly: [{ days: [mon], open: "9:00", close: "10:00" }] }'),
    /HH:MM/,
  );
  refused(receptionYaml('hours: { timeZone: UTC, weekly: [], holidays: ["2026-13-01"] }'), /YYYY-MM-DD/);
  parseTenantsYaml(receptionYaml(`noReplyReassignS: ${MAX_REASSIGN_S}`));
  refused(receptionYaml(`noReplyReassignS: ${MAX_REASSIGN_S + 1}`), /noReplyReassignS/);
  refused(receptionYaml('noReplyReassignS: 0'), /noReplyReassignS/);
  parseTenantsYaml(receptionYaml(`bot: { timeoutMs: ${MIN_BOT_TIMEOUT_MS} }`));
  parseTenantsYaml(receptionYaml(`bot: { timeoutMs: ${MAX_BOT_TIMEOUT_MS} }`));
  refused(receptionYaml(`bot: { timeoutMs: ${MAX_BOT_TIMEOUT_MS + 1} }`), /reception\.bot\.timeoutMs/);
  refused(receptionYaml(`bot: { timeoutMs: ${MIN_BOT_TIMEOUT_MS - 1} }`), /reception\.bot\.timeoutMs/);
  refused(receptionYaml('bot: { subject: "bot.>" }'), /wildcards/);
  refused(
    receptionYaml('hours: { timeZone: UTC, weekly: [], leaveMessage: { maxChars: 4001 } }'),
    /maxChars/,
  );
  refused(receptionYaml('hours: { timeZone: UTC, weekly: [], leaveMessage: { maxStored: 0 } }'), /maxStored/);
  const s = receptionSettingsOf(
    RECEPTION_SECTION.parse({ noReplyReassignS: 90, bot: {}, hours: { timeZone: 'UTC', weekly: [] } }),
  );
  assert.equal(s.noReplyReassignMs, 90_000);
  assert.deepEqual(
    { subject: s.bot?.subject, name: s.bot?.name, timeoutMs: s.bot?.timeoutMs },
    { subject: 'bot', name: 'bot', timeoutMs: 3000 },
  );
  assert.equal(s.hours?.leaveMaxChars, 2000);
});

test('reception bot answer - reply and summary sizes at their limits, anything malformed refused', () => {
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  assert.equal(parseBotAnswer(enc({ reply: 'x'.repeat(50) }), 50).reply?.length, 50);
  assert.throws(() => parseBotAnswer(enc({ reply: 'x'.repeat(51) }), 50), /more than 50/);
  const s = 'y'.repeat(MAX_BOT_SUMMARY_CHARS);
  assert.equal(parseBotAnswer(enc({ handoff: true, summary: s }), 50).summary, s);
  assert.throws(() => parseBotAnswer(enc({ handoff: true, summary: `${s}y` }), 50), /summary/);
  assert.throws(() => parseBotAnswer(new Uint8Array(MAX_BOT_REPLY_BYTES + 1).fill(32), 50), /bytes/);
  assert.throws(() => parseBotAnswer(enc({}), 50), /reply or handoff/);
  assert.throws(() => parseBotAnswer(enc({ reply: '  ' }), 50), /non-blank/);
  assert.throws(() => parseBotAnswer(enc({ reply: 'hi', handoff: 'yes' }), 50), /boolean/);
  assert.throws(() => parseBotAnswer(new TextEncoder().encode('not json'), 50));
  assert.deepEqual(parseBotAnswer(enc({ handoff: true }), 50), { reply: null, handoff: true, summary: null });
  // The answer to a `handoff` request: a summary alone.
  assert.equal(
    parseBotAnswer(enc({ summary: 'asked about returns' }), 50, 'handoff').summary,
    'asked about returns',
  );
});

test('reception frames - leave and handoff are checked like every frame', () => {
  assert.deepEqual(
    parseClientFrame({ type: 'leave', conv: 'c1', body: 'call me', name: 'Ann', ref: 'r1' }, 100),
    {
      type: 'leave',
      conv: 'c1',
      body: 'call me',
      name: 'Ann',
      ref: 'r1',
    },
  );
  assert.throws(() => parseClientFrame({ type: 'leave', conv: 'c1', body: ' ' }, 100), /non-blank/);
  assert.throws(
    () => parseClientFrame({ type: 'leave', conv: 'c1', body: 'x'.repeat(101) }, 100),
    /at most 100/,
  );
  assert.throws(
    () => parseClientFrame({ type: 'leave', conv: 'c1', body: 'x', email: 'e'.repeat(201) }, 100),
    /email/,
  );
  assert.deepEqual(parseClientFrame({ type: 'handoff', conv: 'c1' }, 100), { type: 'handoff', conv: 'c1' });
  assert.throws(() => parseClientFrame({ type: 'handoff', conv: 'bad conv' }, 100), /conv/);
  assert.throws(() => parseClientFrame({ type: 'nonsense' }, 100), /unknown frame type/);
  // reception-frames.ts repeats the identifier pattern (it cannot import frames.ts): the two must agree.
  assert.throws(() => parseClientFrame({ type: 'handoff', conv: 'a'.repeat(65) }, 100));
  assert.equal(ID_PATTERN.source, '^[A-Za-z0-9_.:-]{1,64}$');
});
