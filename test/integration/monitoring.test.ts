/**
 * The Grafana dashboard and the Prometheus alert rules (deploy/k8s/monitoring/) against a real node's
 * /metrics: every metric a panel or a rule names exists there, every `switchboard_*` family of /metrics
 * has a panel, and the alerts of issue 16 are all defined with a runbook section in docs/OPERATIONS.md.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { type BrokerProcess, startBroker } from '../harness/broker.js';
import { ADMIN_HEADERS, randomKeyspace, TEST_JWT_SECRET } from '../harness/env.js';
import { connectClient } from '../harness/ws-client.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MONITORING = `${ROOT}deploy/k8s/monitoring/`;
const METRIC = /\b(?:switchboard|process|nodejs)_[a-z0-9_]+\b/g;

interface Panel {
  title?: string;
  targets?: Array<{ expr: string }>;
}
const dashboard = JSON.parse(readFileSync(`${MONITORING}switchboard-dashboard.json`, 'utf8')) as {
  panels: Panel[];
};
const rules = parse(readFileSync(`${MONITORING}prometheus-rule.yaml`, 'utf8')) as {
  spec: {
    groups: Array<{ rules: Array<{ alert: string; expr: string; annotations: Record<string, string> }> }>;
  };
};
const alerts = rules.spec.groups.flatMap((g) => g.rules);
const panelExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

let node: BrokerProcess;
let exposition = '';

before(async () => {
  const keyspace = randomKeyspace('mon');
  node = await startBroker({ nodeId: `${keyspace}-a`, keyspace });
  // One message through the node, so the latency histogram has its series.
  const token = await createAuthenticator(TEST_JWT_SECRET).sign(
    { tenant: 'mon', sub: 'v', role: 'visitor' },
    600,
  );
  const c = await connectClient(`${node.wsBase}/ws/visitor`, token, 'switchboard.v1.json');
  c.send({ type: 'send', conv: 'c1', cmid: 'm1', body: 'hello' });
  assert.equal((await c.next((f) => f.type === 'ack' || f.type === 'error')).type, 'ack');
  await c.close();
  const res = await fetch(`${node.httpBase}/metrics`, { headers: ADMIN_HEADERS });
  assert.equal(res.status, 200);
  exposition = await res.text();
});

after(() => node?.stop());

/** Series names present in the exposition (`name{labels} value` or `name value`). */
function seriesNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    names.add(line.split(/[{ ]/, 1)[0]!);
  }
  return names;
}

test('monitoring - every metric named by a dashboard panel or an alert rule exists in /metrics', () => {
  const present = seriesNames(exposition);
  const named = new Set([...panelExprs, ...alerts.map((a) => a.expr)].flatMap((e) => e.match(METRIC) ?? []));
  assert.ok(named.size > 30, `the dashboard and rules name ${named.size} metrics`);
  const missing = [...named].filter((m) => !present.has(m));
  assert.deepEqual(missing, [], `named but not in /metrics: ${missing.join(', ')}`);
});

test('monitoring - every switchboard_* family in /metrics has a dashboard panel', () => {
  const families = [...exposition.matchAll(/^# TYPE (switchboard_[a-z0-9_]+) /gm)].map((m) => m[1]!);
  assert.ok(families.length > 30);
  const shown = panelExprs.join('\n');
  const unshown = families.filter((f) => !new RegExp(`\\b${f}(_bucket|_sum|_count)?\\b`).test(shown));
  assert.deepEqual(unshown, [], `families without a panel: ${unshown.join(', ')}`);
});

test('monitoring - the alerts of the issue exist, each with a runbook section in docs/OPERATIONS.md', () => {
  const ops = readFileSync(`${ROOT}docs/OPERATIONS.md`, 'utf8');
  const required = [
    'SwitchboardLeaseLost',
    'SwitchboardShardsWithoutOwner',
    'SwitchboardBusyRateHigh',
    'SwitchboardWriterQueueHigh',
    'SwitchboardDeliveryP99High',
    'SwitchboardWebhookDeadLetters',
  ];
  for (const name of required)
    assert.ok(
      alerts.some((a) => a.alert === name),
      `alert ${name}`,
    );
  for (const a of alerts) {
    const anchor = a.annotations['runbook_url']?.split('#')[1];
    assert.equal(anchor, a.alert.toLowerCase(), `${a.alert} links its runbook`);
    assert.ok(ops.includes(`### ${a.alert}`), `docs/OPERATIONS.md has a section ### ${a.alert}`);
  }
});
