/** The bench's discarding OTLP sink and the --trace-sample option (bench/lib/otlp-sink.ts). */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTraceRatio, startOtlpSink, tracingEnv } from '../../bench/lib/otlp-sink.js';
import { configFromEnv, parseConfig } from '../../src/config.js';

test('bench otlp sink - counts export requests and bytes; the env turns tracing on at the ratio', async () => {
  const sink = await startOtlpSink();
  try {
    const res = await fetch(`${sink.url}/v1/traces`, { method: 'POST', body: 'x'.repeat(1000) });
    assert.equal(res.status, 200);
    assert.deepEqual(sink.stats(), { requests: 1, bytes: 1000 });
    const t = parseConfig(configFromEnv(tracingEnv(sink, 0.01))).telemetry.tracing;
    assert.equal(t.enabled, true);
    assert.equal(t.endpoint, `${sink.url}/v1/traces`);
    assert.deepEqual([t.sampler, t.samplerRatio], ['parentbased_traceidratio', 0.01]);
  } finally {
    await sink.close();
  }
});

test('bench otlp sink - --trace-sample takes a ratio from 0 to 1', () => {
  assert.equal(parseTraceRatio('0.01'), 0.01);
  assert.equal(parseTraceRatio('1'), 1);
  for (const bad of ['-0.1', '1.5', 'all', ''])
    assert.throws(() => parseTraceRatio(bad), /ratio from 0 to 1/);
});
