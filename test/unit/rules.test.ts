/**
 * Routing rules: validation names the line of each problem, matching picks the first rule in file
 * order, templates render bounded text, every bound of the file refuses what passes it; the breaker
 * and backoff the integration uses.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffMs, CircuitBreaker } from '../../src/integration/breaker.js';
import { decodeEventPayload, detectFormat } from '../../src/integration/event-codec.js';
import { planEvent, typeMatches } from '../../src/integration/rule-plan.js';
import { MAX_ACTIONS_PER_RULE, MAX_RULES, parseRules, RulesError } from '../../src/integration/rules.js';
import { compileTemplate, renderTemplate } from '../../src/integration/templates.js';
import { msgpackEncode } from '../../src/protocol/codec.js';

const GOOD = `version: 1
rules:
  - name: shipped
    match:
      type: order.shipped
      order.status: [shipped, partial]
    actions:
      - post:
          card:
            kind: order
            title: "Order {{order.id}} shipped"
            fields: { carrier: "{{shipment.carrier}}" }
          ifNoConversation: open
    timeout: 2s
    retry: 1
  - name: any-order
    match: { type: "order.>" }
    actions:
      - notify: { text: "{{event.type}} for {{order.id}}" }
`;

function problemsOf(text: string): Array<{ line: number; path: string; message: string }> {
  try {
    parseRules(text, 'r.yaml');
  } catch (err) {
    assert.ok(err instanceof RulesError);
    return [...err.problems];
  }
  assert.fail('expected the file to be refused');
}

test('rules - a valid file parses with a revision and defaults', () => {
  const rs = parseRules(GOOD);
  assert.equal(rs.rules.length, 2);
  assert.match(rs.revision, /^[0-9a-f]{16}$/);
  assert.equal(rs.rules[0]!.timeoutMs, 2000);
  assert.equal(rs.rules[1]!.retry, 2);
  assert.equal(rs.rules[1]!.line, 16);
});

test('rules - every problem is reported with its line and path', () => {
  const bad = `version: 1
rules:
  - name: a
    match:
      type: order.shipped
    actions:
      - post: { text: "x {{order.id" }
    retry: 9
  - name: a
    match: { type: "no spaces" }
    actions:
      - teleport: {}
    colour: red
`;
  const p = problemsOf(bad);
  const find = (re: RegExp) => p.find((x) => re.test(x.message));
  assert.equal(find(/unclosed placeholder/)?.line, 7);
  assert.equal(find(/retry must be/)?.line, 8);
  assert.equal(find(/retry must be/)?.path, 'rules[0].retry');
  assert.equal(find(/match.type must be/)?.line, 10);
  assert.equal(find(/an action is a map with one key/)?.line, 12);
  assert.equal(find(/unknown key 'colour'/)?.line, 13);
  // Sorted by line, and the message names file and line.
  assert.deepEqual(
    p.map((x) => x.line),
    [...p.map((x) => x.line)].sort((a, b) => a - b),
  );
  assert.throws(() => parseRules(bad, 'tenant.yaml'), /tenant\.yaml:7: rules\[0\]\.actions\[0\]\.post\.text/);
});

test('rules - YAML syntax errors and a wrong version name their line', () => {
  assert.equal(problemsOf('version: 1\nrules:\n  - name: [unclosed\n')[0]!.line >= 3, true);
  assert.equal(problemsOf('version: 2\nrules: []\n')[0]!.line, 1);
  assert.match(problemsOf('version: 2\nrules: []\n')[0]!.message, /version must be 1/);
  assert.equal(problemsOf('version: 1\nrules: 5\n')[0]!.line, 2);
  assert.match(problemsOf('- 1\n- 2\n')[0]!.message, /must be a map/);
});

test('rules - bounds: rules per file, actions per rule, retries, timeout, template size, file size', () => {
  const rule = (i: number) =>
    `  - name: r${i}\n    match: { type: t }\n    actions: [{ notify: { text: x } }]\n`;
  const many = `version: 1\nrules:\n${Array.from({ length: MAX_RULES + 1 }, (_, i) => rule(i)).join('')}`;
  assert.match(problemsOf(many)[0]!.message, new RegExp(`at most ${MAX_RULES} rules`));
  const actions = Array.from({ length: MAX_ACTIONS_PER_RULE + 1 }, () => '{ notify: { text: x } }').join(
    ', ',
  );
  assert.match(
    problemsOf(`version: 1\nrules:\n  - name: a\n    match: { type: t }\n    actions: [${actions}]\n`)[0]!
      .message,
    /at most 8 actions/,
  );
  const withField = (k: string, v: string) =>
    `version: 1\nrules:\n  - name: a\n    match: { type: t }\n    actions: [{ notify: { text: x } }]\n    ${k}: ${v}\n`;
  assert.match(problemsOf(withField('timeout', '1h'))[0]!.message, /timeout must be/);
  assert.match(problemsOf(withField('timeout', '31s'))[0]!.message, /timeout must be/);
  assert.match(problemsOf(withField('retry', '-1'))[0]!.message, /retry must be/);
  assert.throws(() => compileTemplate('x'.repeat(4001)), /longer than 4000/);
  assert.throws(() => compileTemplate('{{a b}}'), /dotted path/);
  assert.throws(() => compileTemplate('{{x}}'.repeat(33)), /at most 32 placeholders/);
  assert.match(problemsOf(`version: 1\nrules: []\n# ${'x'.repeat(256 * 1024)}\n`)[0]!.message, /exceeds/);
});

test('rules - the first matching rule in file order decides, fields compare as text', () => {
  const rs = parseRules(GOOD);
  const ev = (type: string, data: Record<string, unknown>) => ({ tenant: 'acme', type, id: 'e1', data });
  const shipped = planEvent(
    rs,
    ev('order.shipped', {
      visitor: 'alice',
      order: { id: 42, status: 'shipped' },
      shipment: { carrier: 'DHL' },
    }),
  );
  assert.equal(shipped.rule, 'shipped');
  assert.deepEqual(shipped.actions, [
    {
      kind: 'post',
      visitor: 'alice',
      card: { kind: 'order', title: 'Order 42 shipped', fields: { carrier: 'DHL' } },
      ifNoConversation: 'open',
    },
  ]);
  assert.deepEqual(shipped.warnings, []);
  // Status not in the list: the next rule (order.>) matches.
  const other = planEvent(rs, ev('order.shipped', { order: { id: 7, status: 'lost' } }));
  assert.equal(other.rule, 'any-order');
  assert.deepEqual(other.actions, [{ kind: 'notify', text: 'order.shipped for 7' }]);
  assert.equal(planEvent(rs, ev('refund.approved', {})).rule, null);
  // Missing placeholders render empty and are reported.
  const missing = planEvent(rs, ev('order.created', {}));
  assert.deepEqual(missing.warnings, ['any-order.actions[0].notify.text: no value for {{order.id}}']);
});

test('rules - type patterns work like NATS subjects', () => {
  assert.ok(typeMatches('order.shipped', 'order.shipped'));
  assert.ok(typeMatches('order.*', 'order.shipped'));
  assert.ok(!typeMatches('order.*', 'order.shipped.late'));
  assert.ok(typeMatches('order.>', 'order.shipped.late'));
  assert.ok(!typeMatches('order.>', 'order'));
  assert.ok(typeMatches('>', 'anything'));
  assert.ok(!typeMatches('order', 'order.shipped'));
});

test('templates - output is bounded and placeholders only read own fields', () => {
  const t = compileTemplate('{{a}}-{{b.c}}');
  assert.deepEqual(renderTemplate(t, { a: 'x'.repeat(50), b: { c: 1 } }, 10), {
    text: `${'x'.repeat(9)}…`,
    missing: [],
    truncated: true,
  });
  assert.equal(renderTemplate(compileTemplate('{{constructor}}{{a.__proto__}}'), { a: {} }, 100).text, '');
  assert.equal(renderTemplate(compileTemplate('{{o}}'), { o: { k: [1] } }, 100).text, '{"k":[1]}');
});

test('event payloads - JSON and msgpack are detected, anything else is refused', () => {
  const obj = { visitor: 'alice', order: { id: 'A1' } };
  assert.equal(detectFormat(new TextEncoder().encode(' {"a":1}')), 'json');
  assert.equal(detectFormat(msgpackEncode(obj)), 'msgpack');
  assert.deepEqual(decodeEventPayload(new TextEncoder().encode(JSON.stringify(obj)), 1000), obj);
  assert.deepEqual(decodeEventPayload(msgpackEncode(obj), 1000), obj);
  assert.throws(
    () => decodeEventPayload(new TextEncoder().encode('[1,2]'), 1000),
    /JSON object or a msgpack map/,
  );
  assert.throws(() => decodeEventPayload(new TextEncoder().encode('{"a":'), 1000), /not valid JSON/);
  assert.throws(() => decodeEventPayload(msgpackEncode([1]), 1000), /JSON object or a msgpack map/);
  assert.throws(() => decodeEventPayload(new Uint8Array(2000).fill(0x20), 1000), /more than 1000/);
});

test('breaker - opens after N failures, lets one probe through after the open time', () => {
  const b = new CircuitBreaker({ failureThreshold: 2, openMs: 100 });
  assert.ok(b.allow(0));
  b.failure(0);
  assert.equal(b.state(0), 'closed');
  b.failure(1);
  assert.equal(b.state(1), 'open');
  assert.ok(!b.allow(50));
  assert.ok(b.allow(101), 'the probe');
  assert.ok(!b.allow(102), 'one probe at a time');
  b.failure(103);
  assert.equal(b.state(150), 'open');
  assert.ok(b.allow(203));
  b.success();
  assert.equal(b.state(204), 'closed');
});

test('backoff - exponential with jitter, capped', () => {
  assert.equal(
    backoffMs(1, 100, 1000, () => 0),
    50,
  );
  assert.equal(
    backoffMs(1, 100, 1000, () => 1),
    100,
  );
  assert.equal(
    backoffMs(3, 100, 1000, () => 1),
    400,
  );
  assert.equal(
    backoffMs(10, 100, 1000, () => 1),
    1000,
  );
  assert.equal(
    backoffMs(10, 100, 1000, () => 0),
    500,
  );
});
