/**
 * The fault checker's judgement (bench/faults/classify.ts), without servers: given what clients were
 * told and what Cassandra holds, every cmid gets one class and every broken promise is flagged.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AckSeen,
  type CmidIndexRow,
  classify,
  type PushSeen,
  perSecond,
  recovery,
  type SentMessage,
  type StoredRow,
} from '../../bench/faults/classify.js';
import { seededRandom } from '../../bench/faults/clients.js';
import { verdictOf } from '../../bench/faults/scenario.js';
import { buildSchedule, FAULT_KINDS } from '../../bench/faults/schedule.js';

const C = 't1/conv1';
const body = (cmid: string): string => `body of ${cmid}`;
const sent = (cmid: string, conv = C): SentMessage => ({ conv, cmid, sender: 'v1', body: body(cmid) });
const ack = (cmid: string, seq: number, at = 1000, conv = C): AckSeen => ({
  conv,
  cmid,
  seq,
  id: `id-${cmid}`,
  at,
});
const row = (cmid: string, seq: number, conv = C): StoredRow => ({
  conv,
  seq,
  id: `id-${cmid}`,
  cmid,
  sender: 'v1',
  body: body(cmid),
});
const push = (cmid: string, seq: number, to = 'a1'): PushSeen => ({
  conv: C,
  seq,
  id: `id-${cmid}`,
  cmid,
  body: body(cmid),
  to,
  at: 1200,
});
const index = (cmid: string, seq: number): CmidIndexRow => ({
  conv: C,
  sender: 'v1',
  cmid,
  seq,
  id: `id-${cmid}`,
});

function run(o: {
  sent: SentMessage[];
  acks?: AckSeen[];
  pushes?: PushSeen[];
  stored?: StoredRow[];
  cmidIndex?: CmidIndexRow[];
}) {
  return classify({
    sent: o.sent,
    acks: o.acks ?? [],
    pushes: o.pushes ?? [],
    stored: o.stored ?? [],
    cmidIndex: o.cmidIndex ?? [],
  });
}

test('faults classify - a clean history: every acked cmid ok, no violation, unknowns split by stored', () => {
  const c = run({
    sent: ['m1', 'm2', 'm3', 'm4'].map((m) => sent(m)),
    acks: [ack('m1', 1), ack('m2', 2), ack('m1', 1)],
    stored: [row('m1', 1), row('m2', 2), row('m3', 3)],
    pushes: [push('m1', 1), push('m2', 2), push('m2', 2, 'v1')],
    cmidIndex: [index('m1', 1), index('m2', 2), index('m3', 3)],
  });
  assert.deepEqual(c.counts, { ok: 2, lost: 0, duplicated: 0, unknown: 2 });
  assert.equal(c.unknownStored, 1, 'm3: never acked, stored once');
  assert.equal(c.unknownNotStored, 1, 'm4: never acked, not stored');
  assert.equal(c.violations.length, 0);
  assert.ok(Object.values(c.violationCounts).every((n) => n === 0));
  assert.equal(c.acks, 2);
  assert.equal(
    verdictOf(c, { 'frame-before-welcome': 0, 'oversized-frame': 0, 'internal-error': 0 }).pass,
    true,
  );
});

test('faults classify - the acked seq holds another cmid: lost (issue #12 case 1), and the cmid index is flagged', () => {
  // 569 acked at 570 (answered from its cmids row) while 570 holds the next message.
  const c = run({
    sent: [sent('c07-000569'), sent('c07-000570')],
    acks: [ack('c07-000570', 570), { ...ack('c07-000569', 570), id: 'id-c07-000569' }],
    stored: [...Array.from({ length: 569 }, (_, i) => row(`old${i + 1}`, i + 1)), row('c07-000570', 570)],
    cmidIndex: [index('c07-000569', 570), index('c07-000570', 570)],
  });
  assert.equal(c.counts.lost, 1);
  assert.equal(c.counts.ok, 1);
  const lost = c.violations.find((v) => v.kind === 'lost');
  assert.equal(lost?.cmid, 'c07-000569');
  assert.match(lost?.detail ?? '', /stored there: c07-000570/);
  assert.equal(c.violationCounts['cmid-index'], 1);
  // The 569 old rows were never sent by these clients.
  assert.equal(c.violationCounts.foreign, 569);
});

test('faults classify - an acked row overwritten by another message at the same seq is lost, not ok', () => {
  const c = run({
    sent: [sent('a'), sent('b')],
    acks: [ack('a', 1), ack('b', 1)],
    stored: [row('b', 1)],
  });
  assert.equal(c.counts.lost, 1);
  assert.equal(c.counts.ok, 1);
  assert.equal(c.violations[0]?.cmid, 'a');
  assert.deepEqual(c.violationTimes.lost, [1000], 'when the client was told, for the fault it follows');
});

test('faults classify - an acked seq with no row at all is lost', () => {
  const c = run({ sent: [sent('a'), sent('b')], acks: [ack('a', 1), ack('b', 2)], stored: [row('b', 2)] });
  assert.equal(c.counts.lost, 1);
  assert.equal(c.violationCounts.gap, 1);
  assert.deepEqual(
    c.violations.filter((v) => v.kind === 'gap').map((v) => v.seq),
    [1],
  );
});

test('faults classify - a gap between 1 and the highest seq is flagged per missing seq', () => {
  const c = run({
    sent: [sent('a'), sent('b')],
    stored: [row('a', 1), row('b', 4)],
  });
  assert.deepEqual(
    c.violations.filter((v) => v.kind === 'gap').map((v) => v.seq),
    [2, 3],
  );
  assert.equal(c.counts.unknown, 2);
});

test('faults classify - a cmid stored at two seqs is duplicated, acked or not', () => {
  const c = run({
    sent: [sent('a'), sent('b')],
    acks: [ack('a', 1)],
    stored: [row('a', 1), row('a', 2), row('b', 3), row('b', 4)],
  });
  assert.equal(c.counts.duplicated, 2);
  assert.equal(c.counts.ok, 0);
  assert.equal(c.violationCounts.duplicated, 2);
  assert.match(c.violations.find((v) => v.cmid === 'b')?.detail ?? '', /3, 4 \(never acked\)/);
});

test('faults classify - the same cmid acked with two different seqs is an ack conflict', () => {
  const c = run({
    sent: [sent('a'), sent('b')],
    acks: [ack('a', 1), ack('b', 2), { ...ack('a', 2), id: 'id-b' }],
    stored: [row('a', 1), row('b', 2)],
  });
  assert.equal(c.violationCounts['ack-conflict'], 1);
  assert.equal(c.counts.ok, 2, 'the first ack is the promise, and it holds');
});

test('faults classify - a pushed msg that differs from the stored row at its seq is flagged', () => {
  const c = run({
    sent: [sent('a'), sent('b')],
    acks: [ack('b', 1)],
    stored: [row('b', 1)],
    // The agent was pushed `a` at seq 1, later replaced by `b` (issue #12 case 2).
    pushes: [push('a', 1), push('b', 1), { ...push('b', 1), body: 'another text' }, push('x', 7)],
  });
  assert.equal(c.violationCounts['push-differs'], 3);
  assert.deepEqual(
    c.violations.filter((v) => v.kind === 'push-differs').map((v) => v.cmid),
    ['a', 'b', 'x'],
  );
});

test('faults classify - a stored body other than the one sent is flagged; so is a row no client sent', () => {
  const c = run({
    sent: [sent('a')],
    acks: [ack('a', 1)],
    stored: [{ ...row('a', 1), body: 'tampered' }, row('zz', 2)],
  });
  assert.equal(c.violationCounts['body-differs'], 1);
  assert.equal(c.violationCounts.foreign, 1);
});

test('faults classify - a row of another sender (a system message) takes its seq and is not scored', () => {
  const c = run({
    sent: [sent('a'), sent('b')],
    acks: [ack('a', 1), ack('b', 3)],
    stored: [row('a', 1), { ...row('welcome-card', 2), sender: 'system' }, row('b', 3)],
  });
  assert.equal(c.otherRows, 1);
  assert.equal(c.counts.ok, 2);
  assert.equal(c.violations.length, 0);
});

test('faults classify - two rows at one seq are a seq conflict', () => {
  const c = run({ sent: [sent('a'), sent('b')], stored: [row('a', 1), row('b', 1)] });
  assert.equal(c.violationCounts['seq-conflict'], 1);
});

test('faults classify - examples are bounded per kind, counts are complete; conversations kept apart', () => {
  const stored = [row('a', 1), row('a', 500)];
  const c = classify(
    {
      sent: [sent('a'), sent('a', 't1/other')],
      acks: [ack('a', 1, 5, 't1/other')],
      pushes: [],
      stored,
      cmidIndex: [],
    },
    10,
  );
  assert.equal(c.violationCounts.gap, 498);
  assert.equal(c.violations.filter((v) => v.kind === 'gap').length, 10);
  // The ack was in another conversation: there the acked seq has no row.
  assert.equal(c.counts.lost, 1);
  assert.equal(c.counts.duplicated, 1);
  assert.equal(c.conversations, 2);
});

test('faults classify - the verdict fails on any violation or protocol finding', () => {
  const clean = run({ sent: [sent('a')], acks: [ack('a', 1)], stored: [row('a', 1)] });
  assert.equal(
    verdictOf(clean, { 'frame-before-welcome': 0, 'oversized-frame': 0, 'internal-error': 0 }).pass,
    true,
  );
  const v = verdictOf(clean, { 'frame-before-welcome': 2, 'oversized-frame': 0, 'internal-error': 0 });
  assert.equal(v.pass, false);
  assert.deepEqual(v.reasons, ['2 × frame-before-welcome']);
  const lost = run({ sent: [sent('a')], acks: [ack('a', 2)], stored: [row('a', 1)] });
  assert.equal(
    verdictOf(lost, { 'frame-before-welcome': 0, 'oversized-frame': 0, 'internal-error': 0 }).pass,
    false,
  );
});

test('faults timeline - acks per second and the recovery around a fault', () => {
  const times: number[] = [];
  for (let t = 0; t < 20_000; t += 100) if (t < 10_000 || t >= 14_000) times.push(t);
  assert.deepEqual(perSecond([0, 999, 1000, 2500], 3000), [2, 1, 1]);
  const r = recovery(times, { startMs: 10_000, endMs: 12_000, untilMs: 20_000 });
  assert.equal(r.baselinePerS, 10);
  assert.equal(r.longestStallMs, 4000);
  assert.equal(r.stallEndsAfterMs, 4000);
  assert.equal(r.resumeAfterEndMs, 1500);
  const never = recovery(
    times.filter((t) => t < 10_000),
    { startMs: 10_000, endMs: 12_000, untilMs: 20_000 },
  );
  assert.equal(never.resumeAfterEndMs, undefined);
  assert.ok(never.longestStallMs >= 10_000);
});

test('faults schedule - short holds each fault once (every nats-server in turn); soak repeats all, seeded', () => {
  const short = buildSchedule('short', seededRandom(1), {
    seed: 1,
    brokers: 3,
    natsServers: 3,
    leaseTtlMs: 6000,
  });
  for (const k of FAULT_KINDS) {
    const n = short.steps.filter((s) => s.kind === k).length;
    assert.equal(n, k === 'kill-nats' ? 3 : 1, k);
  }
  assert.deepEqual(
    short.steps.filter((s) => s.kind === 'kill-nats').map((s) => s.target),
    [0, 1, 2],
  );
  const pause = short.steps.find((s) => s.kind === 'pause-broker')!;
  assert.ok(pause.holdMs > 6000, 'paused past its lease');
  const brokerTargets = short.steps.filter((s) => s.kind.endsWith('-broker')).map((s) => s.target);
  assert.deepEqual([...brokerTargets].sort(), [0, 1, 2], 'each broker fault hits another broker');
  const soakA = buildSchedule('soak', seededRandom(7), {
    seed: 7,
    brokers: 3,
    natsServers: 3,
    leaseTtlMs: 6000,
    durationMs: 30 * 60_000,
  });
  const soakB = buildSchedule('soak', seededRandom(7), {
    seed: 7,
    brokers: 3,
    natsServers: 3,
    leaseTtlMs: 6000,
    durationMs: 30 * 60_000,
  });
  assert.deepEqual(soakA.steps, soakB.steps, 'same seed, same schedule');
  for (const k of FAULT_KINDS) assert.ok(soakA.steps.filter((s) => s.kind === k).length >= 5, k);
});
