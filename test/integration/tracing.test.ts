/**
 * Tracing across two real broker processes (issue 16): both export OTLP/HTTP to a collector of this
 * test's own. A visitor on node A sends into a conversation whose shard node B holds; the message must
 * come out as ONE connected trace: A's gateway, the coalesced request to the shard's holder (sb.link), B's actor, the history
 * write, the fan-out over the delivery link, A's delivery to the socket, and the `message` event through the `sb_out`
 * stream to the webhook deliverer, whose POST carries the same trace id in `traceparent`.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { SHARD_COUNT, shardOf } from '../../src/routing/shard.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { ADMIN_HEADERS, randomKeyspace, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient, type TestClient } from '../harness/ws-client.js';

interface CollectedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  instance: string;
  attributes: Record<string, string>;
}

const TENANT = 'tr';
const keyspace = randomKeyspace('trace');
const dir = mkdtempSync(join(tmpdir(), 'sb-trace-'));
const spans: CollectedSpan[] = [];
const hooks: IncomingHttpHeaders[] = [];
let collector: Server;
let a: BrokerProcess;
let b: BrokerProcess;
let visitor: TestClient | undefined;

/** OTLP/JSON ids are hex; tolerate base64 (the protobuf-JSON default) too. */
function hexId(id: unknown): string {
  if (typeof id !== 'string' || id === '') return '';
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

type OtlpValue = { stringValue?: string; intValue?: string | number };
type OtlpAttrs = Array<{ key: string; value: OtlpValue }> | undefined;
const attrs = (list: OtlpAttrs): Record<string, string> =>
  Object.fromEntries((list ?? []).map((kv) => [kv.key, String(kv.value.stringValue ?? kv.value.intValue)]));

/** Collects OTLP/HTTP JSON exports (POST /v1/traces) and webhook deliveries (POST /hook). */
function onRequest(body: Buffer, path: string, headers: IncomingHttpHeaders): void {
  if (path === '/hook') {
    hooks.push(headers);
    return;
  }
  const raw = headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
  const req = JSON.parse(raw.toString('utf8')) as {
    resourceSpans?: Array<{
      resource?: { attributes?: OtlpAttrs };
      scopeSpans?: Array<{
        spans?: Array<{
          name: string;
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          attributes?: OtlpAttrs;
        }>;
      }>;
    }>;
  };
  for (const rs of req.resourceSpans ?? []) {
    const instance = attrs(rs.resource?.attributes)['service.instance.id'] ?? '';
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        spans.push({
          name: s.name,
          traceId: hexId(s.traceId),
          spanId: hexId(s.spanId),
          parentSpanId: hexId(s.parentSpanId),
          instance,
          attributes: attrs(s.attributes),
        });
  }
}

async function heldShards(node: BrokerProcess): Promise<number[]> {
  const r = await fetch(`${node.httpBase}/admin/shards`, { headers: ADMIN_HEADERS });
  return ((await r.json()) as { held: number[] }).held;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        onRequest(Buffer.concat(chunks), req.url ?? '', req.headers);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  const port = (collector.address() as AddressInfo).port;
  writeFileSync(
    join(dir, 'tenants.yaml'),
    [
      'version: 1',
      'tenants:',
      `  ${TENANT}:`,
      '    integration:',
      `      webhooks: [{ id: crm, url: "http://127.0.0.1:${port}/hook", secret: whsec-trace-0123456789, events: [message] }]`,
      '',
    ].join('\n'),
  );
  const env = {
    SB_TENANTS_FILE: join(dir, 'tenants.yaml'),
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_SERVICE_NAME: 'switchboard-test',
  };
  [a, b] = await Promise.all([
    startBroker({ nodeId: `${keyspace}-a`, keyspace, env }),
    startBroker({ nodeId: `${keyspace}-b`, keyspace, env }),
  ]);
});

after(async () => {
  await visitor?.close();
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await new Promise<void>((r) => collector.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

test('tracing - one message is one connected trace across two broker processes', async () => {
  // Wait until the two nodes share the shards, then pick a conversation whose shard B holds.
  let onB: number[] = [];
  for (let t0 = Date.now(); ; await sleep(100)) {
    const [ha, hb] = await Promise.all([heldShards(a), heldShards(b)]);
    if (ha.length > 0 && hb.length > 0 && ha.length + hb.length === SHARD_COUNT) {
      onB = hb;
      break;
    }
    assert.ok(Date.now() - t0 < 30_000, 'shards not shared between the two nodes in time');
  }
  const held = new Set(onB);
  let conv = '';
  for (let i = 0; conv === '' && i < 10_000; i++) if (held.has(shardOf(TENANT, `c${i}`))) conv = `c${i}`;

  const auth = createAuthenticator(TEST_JWT_SECRET);
  const token = await auth.sign({ tenant: TENANT, sub: 'shopper', role: 'visitor' }, 600);
  visitor = await connectClient(`${a.wsBase}/ws/visitor`, token, 'switchboard.v1.json');
  visitor.send({ type: 'send', conv, cmid: 'm1', body: 'where is my parcel?' });
  const ack = await visitor.next((f) => f.type === 'ack' || f.type === 'error');
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  await visitor.next((f) => f.type === 'msg' && f['conv'] === conv);

  // The spans arrive in batches (100 ms) from both processes; the webhook a little later.
  const want = [
    /^sb\.gateway\.send$/,
    // The shard hop: a coalesced request on the holder's member inbox (src/routing/member-link.ts).
    /^sb\.link$/,
    /^sb\.actor$/,
    /^sb\.store\.append$/,
    // The fan-out: the push travels on the delivery link (src/presence/) and is handed to the socket on A.
    /^sb\.deliver$/,
    /^publish .*\.out$/,
    /^consume webhooks$/,
  ];
  let trace: CollectedSpan[] = [];
  for (let t0 = Date.now(); ; await sleep(100)) {
    const root = spans.find((s) => s.name === 'sb.gateway.send' && s.attributes['sb.id'] === conv);
    trace = root ? spans.filter((s) => s.traceId === root.traceId) : [];
    const ids = new Set(trace.map((s) => s.spanId));
    const complete = want.every((re) => trace.some((s) => re.test(s.name)));
    const connected = trace.every((s) => s.parentSpanId === '' || ids.has(s.parentSpanId));
    if (complete && connected && hooks.length > 0) break;
    if (Date.now() - t0 > 15_000) {
      const names = trace.map((s) => `${s.name}@${s.instance}`);
      assert.fail(`trace incomplete or broken after 15 s (webhooks: ${hooks.length}): ${names.join(', ')}`);
    }
  }
  const of = (re: RegExp) => trace.filter((s) => re.test(s.name));
  const byId = new Map(trace.map((s) => [s.spanId, s]));
  assert.equal(trace.filter((s) => s.parentSpanId === '').length, 1, 'exactly one root');
  assert.equal(of(/^sb\.gateway\.send$/)[0]!.instance, a.nodeId, 'the root is on the gateway node');
  assert.ok(
    of(/^sb\.link$/).every((s) => s.instance === b.nodeId),
    'the shard hop lands on B',
  );
  const actor = of(/^sb\.actor$/).find((s) => s.attributes['sb.id'] === conv)!;
  assert.equal(actor.instance, b.nodeId);
  assert.equal(byId.get(actor.parentSpanId)?.name, 'sb.link', 'actor under the hop');
  const append = of(/^sb\.store\.append$/)[0]!;
  assert.equal(append.instance, b.nodeId);
  const deliveredOnA = of(/^sb\.deliver$/).some((s) => s.instance === a.nodeId);
  assert.ok(deliveredOnA, 'the fan-out reaches the socket on A inside the trace');
  assert.equal(new Set(trace.map((s) => s.instance)).size, 2, 'spans of both processes');
  // The webhook POST continues the same trace for the business system.
  const traceparent = String(hooks[0]!['traceparent'] ?? '');
  assert.equal(traceparent.split('-')[1], actor.traceId, 'webhook traceparent carries the trace id');
});
