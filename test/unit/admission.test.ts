/**
 * Upgrade admission (issue #14, src/gateway/admission.ts): a token bucket and an in-progress bound per
 * worker, checked before the token; refusals are told a spread-out schedule of retry delays.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  drainRetryAfterMs,
  UPGRADE_MIN_RETRY_AFTER_MS,
  UPGRADE_SLOW_MS,
  UpgradeAdmission,
} from '../../src/gateway/admission.js';

const T0 = 1_000_000;

test('admission - a burst is admitted, the next upgrade is refused with a retry delay', () => {
  const a = new UpgradeAdmission({ ratePerS: 100, burst: 5, maxPending: 100, maxRetryAfterMs: 10_000 }, T0);
  for (let i = 0; i < 5; i++) {
    assert.equal(a.admit(T0), 0, `upgrade ${i} of the burst is admitted`);
    a.done(T0, T0);
  }
  assert.equal(a.admit(T0), UPGRADE_MIN_RETRY_AFTER_MS, 'the first refusal gets the soonest slot');
  assert.equal(a.stats.refusedRate, 1);
  // 10 ms later the bucket has one token again (100 per second).
  assert.equal(a.admit(T0 + 10), 0);
});

test('admission - refusals are told successive slots, 1000 / rate ms apart, up to the horizon', () => {
  const a = new UpgradeAdmission({ ratePerS: 100, burst: 1, maxPending: 100, maxRetryAfterMs: 1000 }, T0);
  assert.equal(a.admit(T0), 0);
  const delays = Array.from({ length: 12 }, () => a.admit(T0));
  assert.deepEqual(delays.slice(0, 4), [250, 260, 270, 280], 'each refusal 10 ms after the one before');
  assert.ok(
    delays.every((d) => d <= 1000),
    'never beyond the horizon',
  );
  const many = Array.from({ length: 200 }, () => a.admit(T0));
  assert.equal(Math.max(...many), 1000, 'a crowd beyond the horizon is told the horizon');
  // Time passes: the schedule is relative to now, never in the past.
  assert.equal(a.admit(T0 + 60_000), 0, 'a token again after a quiet minute');
  assert.equal(a.admit(T0 + 60_000), UPGRADE_MIN_RETRY_AFTER_MS);
});

test('admission - upgrades in progress are bounded; done() frees a place', () => {
  const a = new UpgradeAdmission({ ratePerS: 1000, burst: 1000, maxPending: 3, maxRetryAfterMs: 5000 }, T0);
  for (let i = 0; i < 3; i++) assert.equal(a.admit(T0), 0);
  assert.ok(a.admit(T0) > 0, 'the fourth waits for one of the three');
  assert.equal(a.stats.refusedPending, 1);
  assert.equal(a.stats.pending, 3);
  a.done(T0, T0);
  assert.equal(a.admit(T0), 0, 'one ended, one more is admitted');
  a.done(T0, T0);
  a.done(T0, T0);
  a.done(T0, T0);
  a.done(T0, T0);
  assert.equal(a.stats.pending, 0, 'done() never goes below zero');
});

/** An admission whose token bucket never limits, with `maxPending` upgrades admitted at T0. */
function fullAdmission(maxPending: number, minPending: number): UpgradeAdmission {
  const a = new UpgradeAdmission(
    { ratePerS: 100_000, burst: 100_000, maxPending, minPending, maxRetryAfterMs: 5000 },
    T0,
  );
  for (let i = 0; i < maxPending; i++) assert.equal(a.admit(T0), 0);
  return a;
}

test('admission - slow upgrades shrink the in-progress bound by a quarter, once per UPGRADE_SLOW_MS, to its floor', () => {
  const a = fullAdmission(64, 20);
  assert.ok(a.admit(T0) > 0, 'the 65th waits');
  const slow = UPGRADE_SLOW_MS + 1;
  a.done(T0, T0 + slow);
  assert.equal(a.stats.limit, 48, 'a slow one: 64 -> 48');
  a.done(T0 + slow + 10 - slow, T0 + slow + 10);
  assert.equal(a.stats.limit, 48, 'the next slow one within the second does not shrink it again');
  assert.equal(a.stats.pending, 62);
  assert.ok(a.admit(T0 + slow + 20) > 0, '62 in progress is above the bound of 48: refused');
  let now = T0 + slow;
  for (let i = 0; i < 5; i++) {
    now += UPGRADE_SLOW_MS;
    a.done(now - slow, now);
  }
  assert.equal(a.stats.limit, 20, '48 -> 36 -> 27 -> 20, and never below the floor');
});

test('admission - quick upgrades grow the bound back by one each, up to maxPending', () => {
  const a = fullAdmission(40, 10);
  a.done(T0 + 2000 - (UPGRADE_SLOW_MS + 1), T0 + 2000);
  assert.equal(a.stats.limit, 30);
  for (let i = 0; i < 5; i++) a.done(T0 + 2000 - 5, T0 + 2000);
  assert.equal(a.stats.limit, 35, 'five quick ones: +5');
  assert.equal(a.stats.pending, 34);
  assert.equal(a.admit(T0 + 2000), 0, '34 in progress, bound 35: admitted');
  assert.ok(a.admit(T0 + 2000) > 0, '35 in progress: refused');
  for (let i = 0; i < 35; i++) a.done(T0 + 2000 - 5, T0 + 2000);
  assert.equal(a.stats.limit, 40, 'never above maxPending');
  assert.equal(a.stats.pending, 0);
});

test('admission - a drain tells its sockets successive slots of the pace after the minimum, up to the horizon', () => {
  const o = { minMs: 5000, ratePerS: 1000, maxMs: 30_000 };
  assert.deepEqual(
    [0, 1, 2, 999, 1000].map((k) => drainRetryAfterMs(k, o)),
    [5000, 5001, 5002, 5999, 6000],
  );
  // 16 667 sockets (100k over six workers) spread over ~16.7 s after the minimum.
  assert.equal(drainRetryAfterMs(16_666, o), 21_666);
  // Past the horizon every socket is told the horizon.
  assert.equal(drainRetryAfterMs(40_000, o), 30_000);
  assert.equal(drainRetryAfterMs(3, { minMs: 0, ratePerS: 4, maxMs: 30_000 }), 750);
});
