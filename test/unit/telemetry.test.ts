/**
 * Tracing (src/telemetry/): the OTEL_* variables it is configured by, the hooks being a plain call
 * when it is off, and — with the SDK's in-memory exporter — one connected trace across a request, a
 * handler, a mailbox and a publish over a transport that carries headers as NATS does.
 */
import * as assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { IncomingMessage, Transport } from '../../src/cluster/transport.js';
import { configFromEnv, parseConfig } from '../../src/config.js';
import { traceTransport } from '../../src/telemetry/nats.js';
import { createOtelBackend } from '../../src/telemetry/otel.js';
import {
  startTracing,
  stopTracing,
  traceContext,
  traced,
  traceHeaders,
  tracingOn,
} from '../../src/telemetry/tracing.js';

const tracingOf = (env: NodeJS.ProcessEnv) => parseConfig(configFromEnv(env)).telemetry.tracing;

test('telemetry - OTEL_* variables: off by default, on with an exporter or an endpoint', () => {
  const table: Array<[NodeJS.ProcessEnv, boolean, string]> = [
    [{}, false, 'http://localhost:4318/v1/traces'],
    [{ OTEL_TRACES_EXPORTER: 'otlp' }, true, 'http://localhost:4318/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://col:4318/' }, true, 'http://col:4318/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://col:9/t' }, true, 'http://col:9/t'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://col:4318', OTEL_SDK_DISABLED: 'true' }, false, ''],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://col:4318', OTEL_TRACES_EXPORTER: 'none' }, false, ''],
  ];
  for (const [env, enabled, endpoint] of table) {
    const t = tracingOf(env);
    assert.equal(t.enabled, enabled, JSON.stringify(env));
    if (endpoint) assert.equal(t.endpoint, endpoint, JSON.stringify(env));
  }
  const t = tracingOf({
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.01',
    OTEL_SERVICE_NAME: 'sb-eu',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,k8s.namespace.name=chat',
    OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc',
    OTEL_BSP_SCHEDULE_DELAY: '250',
  });
  assert.equal(t.sampler, 'parentbased_traceidratio');
  assert.equal(t.samplerRatio, 0.01);
  assert.equal(t.serviceName, 'sb-eu');
  assert.deepEqual(t.resourceAttributes, { 'deployment.environment': 'prod', 'k8s.namespace.name': 'chat' });
  assert.deepEqual(t.headers, { authorization: 'Bearer abc' });
  assert.equal(t.batchDelayMs, 250);
});

test('telemetry - bad OTEL_* values are refused with the variable or field named', () => {
  const table: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, /telemetry.tracing.exporter must be one of/],
    [{ OTEL_TRACES_SAMPLER: 'sometimes' }, /telemetry.tracing.sampler must be one of/],
    [{ OTEL_TRACES_SAMPLER_ARG: '2' }, /samplerRatio must be a number from 0 to 1/],
    [{ OTEL_TRACES_SAMPLER_ARG: 'half' }, /OTEL_TRACES_SAMPLER_ARG must be a number/],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'col:4318' }, /endpoint must be an http\(s\) URL/],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'novalue' }, /OTEL_RESOURCE_ATTRIBUTES must be a list of key=value/],
    [{ OTEL_BSP_SCHEDULE_DELAY: '0' }, /batchDelayMs must be a positive integer/],
  ];
  for (const [env, message] of table) assert.throws(() => tracingOf(env), message, JSON.stringify(env));
});

/** An in-process stand-in for NATS: subjects, queue-less subscriptions, request-reply, headers. */
function memoryTransport(): Transport {
  const subs = new Map<string, Array<(m: IncomingMessage) => void>>();
  const deliver = (
    subject: string,
    data: Uint8Array,
    headers: Record<string, string> | undefined,
    reply?: (d: Uint8Array) => void,
  ): boolean => {
    const handlers = subs.get(subject) ?? [];
    for (const h of handlers) {
      h({
        subject,
        data,
        ...(headers ? { headers: { ...headers } } : {}),
        respond: (d) => {
          reply?.(d);
          return reply !== undefined;
        },
      });
    }
    return handlers.length > 0;
  };
  return {
    name: 'memory',
    publish: (subject, data, headers) => {
      deliver(subject, data, headers);
    },
    subscribe(subject, handler) {
      subs.set(subject, [...(subs.get(subject) ?? []), handler]);
      return { unsubscribe: () => subs.set(subject, []) };
    },
    request: (subject, data, _timeoutMs, headers) =>
      new Promise((resolve, reject) => {
        if (!deliver(subject, data, headers, resolve)) reject(new Error('no responders'));
      }),
    flush: async () => {},
    kv: () => Promise.reject(new Error('no kv here')),
    jetstream: () => {
      throw new Error('no jetstream here');
    },
    close: async () => {},
    closed: () => new Promise(() => {}),
  };
}

after(() => stopTracing());

test('telemetry - off: every hook is the plain call, nothing is wrapped', async () => {
  assert.equal(tracingOn(), false);
  assert.equal(await startTracing(parseConfig().telemetry.tracing, 'n'), false);
  const p = Promise.resolve(7);
  assert.equal(
    traced('x', 't', 'c', (a: Promise<number>) => a, p, 0),
    p,
    'traced returns the promise of fn itself',
  );
  assert.equal(traceContext(), undefined);
  assert.equal(traceHeaders(), undefined);
  const t = memoryTransport();
  assert.equal(traceTransport(t), t);
});

test('telemetry - one message is one connected trace: send, shard request, actor, write, fan-out', async () => {
  const cfg = parseConfig({ telemetry: { tracing: { enabled: true } } }).telemetry.tracing;
  const backend = createOtelBackend(cfg, 'node-a', { inMemory: true });
  assert.equal(await startTracing(cfg, 'node-a', backend), true);
  const nats = traceTransport(memoryTransport());
  const delivered: Array<Record<string, string> | undefined> = [];
  // The receiving gateway: the user's subject.
  nats.subscribe('sb.user.t.agent', (m) => delivered.push(m.headers));
  // A mailbox between the shard subscription and the actor, as in ActorCell: the drain loses the
  // async context, so the envelope carries it.
  const mailbox: Array<{ trace: ReturnType<typeof traceContext>; done: (v: Uint8Array) => void }> = [];
  const actor = async (env: (typeof mailbox)[number], _: number) => {
    await traced('sb.store.append', 't', 'c1', async () => {}, 0, 0);
    nats.publish('sb.user.t.agent', new Uint8Array([1]));
    env.done(new Uint8Array([2]));
  };
  nats.subscribe('sb.shard.7', (m) => {
    mailbox.push({ trace: traceContext(), done: (v) => m.respond(v) });
  });
  setTimeout(() => {
    for (const env of mailbox.splice(0)) void traced('sb.actor', 't', 'c1', actor, env, 0, env.trace);
  }, 5);
  // Outside any trace a publish carries no trace headers (leases, presence).
  nats.publish('sb.user.t.agent', new Uint8Array([0]));
  await traced(
    'sb.gateway.send',
    't',
    'c1',
    (subject: string, data: Uint8Array) => nats.request(subject, data, 1000),
    'sb.shard.7',
    new Uint8Array([0]),
  );
  await backend.flush();
  const spans = backend.finishedSpans();
  const names = spans.map((s) => s.name).sort();
  assert.deepEqual(names, [
    'publish sb.user',
    'receive sb.shard',
    'receive sb.user',
    'request sb.shard',
    'sb.actor',
    'sb.gateway.send',
    'sb.store.append',
  ]);
  assert.equal(new Set(spans.map((s) => s.traceId)).size, 1, 'one trace');
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const parentName = (name: string) => {
    const s = spans.find((x) => x.name === name)!;
    return s.parentSpanId === undefined ? undefined : byId.get(s.parentSpanId)?.name;
  };
  assert.equal(parentName('sb.gateway.send'), undefined);
  assert.equal(parentName('request sb.shard'), 'sb.gateway.send');
  assert.equal(parentName('receive sb.shard'), 'request sb.shard');
  assert.equal(parentName('sb.actor'), 'receive sb.shard');
  assert.equal(parentName('sb.store.append'), 'sb.actor');
  assert.equal(parentName('publish sb.user'), 'sb.actor');
  assert.equal(parentName('receive sb.user'), 'publish sb.user');
  assert.equal(delivered[0], undefined, 'no headers outside a trace');
  assert.match(delivered[1]?.['traceparent'] ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const send = spans.find((s) => s.name === 'sb.gateway.send')!;
  assert.deepEqual(send.attributes, { 'sb.tenant': 't', 'sb.id': 'c1' });
  assert.equal(send.instance, 'node-a');
  await stopTracing();
  assert.equal(tracingOn(), false);
});
