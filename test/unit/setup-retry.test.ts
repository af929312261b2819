import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTransientSetupError, retrySetup } from '../../src/cluster/setup-retry.js';

test('setup retry - JetStream setup is repeated while the cluster forms, up to the deadline', async () => {
  let calls = 0;
  const retried: number[] = [];
  const value = await retrySetup(
    'kv bucket b',
    async () => {
      calls++;
      if (calls === 1) throw Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' });
      if (calls === 2) throw new Error('JetStream system temporarily unavailable');
      return 'bucket';
    },
    { onRetry: (_what, _err, attempt) => retried.push(attempt) },
  );
  assert.equal(value, 'bucket');
  assert.deepEqual(retried, [1, 2]);
});

test('setup retry - a configuration error is thrown at once, a transient one after the deadline', async () => {
  let calls = 0;
  await assert.rejects(
    retrySetup('stream s', async () => {
      calls++;
      throw new Error('stream name already in use with a different configuration');
    }),
    /different configuration/,
  );
  assert.equal(calls, 1);
  calls = 0;
  const t0 = Date.now();
  await assert.rejects(
    retrySetup(
      'stream s',
      async () => {
        calls++;
        throw Object.assign(new Error('no responders'), { code: '503' });
      },
      { deadlineMs: 700 },
    ),
    /no responders/,
  );
  assert.ok(calls >= 2 && calls <= 4, `tried ${calls} times within the deadline`);
  assert.ok(Date.now() - t0 < 1_500);
  assert.equal(isTransientSetupError(new Error('insufficient resources')), true);
  assert.equal(isTransientSetupError(new Error('bad subject')), false);
});
