/**
 * Tracing (src/telemetry/): the OTEL_* variables it is configured by, the hooks being a plain call
 * when it is off, and — with the SDK's in-memory exporter — one connected trace across a request, a
 * handler, a mailbox and a publish over a transport that carries headers as NATS does.
 */
import * as assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { JetStreamPort, StreamMessage } from '../../src/cluster/jetstream.js';
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

/** An in-process stand-in for JetStream: one stream, every stored message handed to the consumer. */
function memoryJetStream(): JetStreamPort {
  const stored: Array<{ subject: string; data: Uint8Array; headers: Record<string, string> }> = [];
  let handler: ((m: StreamMessage) => Promise<void>) | undefined;
  const deliver = (i: number) => {
    const s = stored[i]!;
    const m: StreamMessage = {
      subject: s.subject,
      data: s.data,
      msgId: s.headers['Nats-Msg-Id'],
      deliveryCount: 1,
      streamSeq: i + 1,
      storedAt: Date.now(),
      header: (name) => s.headers[name],
      ack() {},
      nak() {},
      working() {},
      term() {},
    };
    void handler?.(m);
  };
  return {
    ensureStream: async () => {},
    prepare: async () => {},
    async publish(subject, data, msgId, headers) {
      const i =
        stored.push({ subject, data, headers: { ...headers, ...(msgId ? { 'Nats-Msg-Id': msgId } : {}) } }) -
        1;
      setTimeout(() => deliver(i), 1);
      return { seq: stored.length, duplicate: false };
    },
    async consume(_spec, _opts, h) {
      handler = h;
      return { stop: async () => {} };
    },
  };
}

/** An in-process stand-in for NATS: subjects, queue-less subscriptions, request-reply, headers. */
function memoryTransport(js: JetStreamPort = memoryJetStream()): Transport {
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
    jetstream: () => js,
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

test('telemetry - JetStream: a stored event continues its publisher trace; one without starts its own', async () => {
  const cfg = parseConfig({ telemetry: { tracing: { enabled: true } } }).telemetry.tracing;
  const backend = createOtelBackend(cfg, 'node-b', { inMemory: true });
  await startTracing(cfg, 'node-b', backend);
  const js = traceTransport(memoryTransport()).jetstream();
  const handled: string[] = [];
  let done: () => void = () => {};
  const twoHandled = new Promise<void>((r) => {
    done = r;
  });
  await js.consume(
    { stream: 's', durable: 'biz-events', ackWaitMs: 1000, maxDeliver: 1, maxAckPending: 10 },
    { maxInFlight: 4, retryDelayMs: 10 },
    async (m) => {
      // Work inside the handler joins the consumer span (here: a traced step of its own).
      await traced('sb.rule', 't', m.subject, async () => {}, 0, 0);
      handled.push(m.subject);
      if (handled.length === 2) done();
    },
  );
  await traced(
    'sb.business-system',
    't',
    'x',
    (s: string) => js.publish(s, new Uint8Array(), 'e1'),
    'ev.a',
    0,
  );
  await js.publish('ev.b', new Uint8Array(), 'e2');
  await twoHandled;
  await new Promise((r) => setTimeout(r, 20)); // the consume spans end when the handlers' promises settle
  await backend.flush();
  const spans = backend.finishedSpans();
  const consumes = spans.filter((s) => s.name === 'consume biz-events');
  assert.equal(consumes.length, 2);
  const publisher = spans.find((s) => s.name === 'sb.business-system')!;
  const [a, b] = ['ev.a', 'ev.b'].map((subj) =>
    consumes.find((c) => c.attributes['messaging.destination.name'] === subj),
  );
  assert.equal(a!.traceId, publisher.traceId, 'continues the trace of whoever published');
  assert.equal(a!.parentSpanId, publisher.spanId);
  assert.equal(b!.parentSpanId, undefined, 'no traceparent: a trace of its own');
  assert.notEqual(b!.traceId, publisher.traceId);
  for (const rule of spans.filter((s) => s.name === 'sb.rule'))
    assert.ok(
      consumes.some((c) => c.spanId === rule.parentSpanId),
      'handler work is a child of its consume span',
    );
  await stopTracing();
});
