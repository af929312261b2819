/**
 * `switchboard rules test` prints what would happen (exit 0) or the file's problems with lines (exit 1);
 * the registry hot-reloads a tenant's file and keeps the last good rules when an edit is bad.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RulesRegistry } from '../../src/integration/rules-registry.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sb-rules-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const RULES = `version: 1
rules:
  - name: refund-approved
    match: { type: refund.approved }
    actions:
      - post:
          text: "Refund {{refund.id}} of {{refund.amount}} approved"
      - notify: { text: "refund {{refund.id}} approved" }
`;

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'rules', 'test', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('rules test - prints the matching rule and each rendered action', () => {
  const rules = join(dir, 'ok.yaml');
  const event = join(dir, 'ev.json');
  writeFileSync(rules, RULES);
  writeFileSync(
    event,
    JSON.stringify({ type: 'refund.approved', conv: 'c-9', refund: { id: 'R1', amount: '12.00' } }),
  );
  const r = run(rules, event);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /rule 'refund-approved' matches/);
  assert.match(
    r.out,
    /1\. post text "Refund R1 of 12\.00 approved" as a system message into conversation c-9/,
  );
  assert.match(r.out, /2\. notify the agent assigned to conversation c-9: "refund R1 approved"/);
  const json = run(rules, event, '--json');
  assert.equal(JSON.parse(json.out).actions.length, 2);
  const none = run(rules, event, '--type', 'refund.denied');
  assert.equal(none.code, 0);
  assert.match(none.out, /no rule matches/);
});

test('rules test - a bad file exits 1 naming file and line; a bad event exits 2', () => {
  const rules = join(dir, 'bad.yaml');
  const event = join(dir, 'ev2.json');
  writeFileSync(rules, RULES.replace('refund.approved }', 'refund approved }'));
  writeFileSync(event, '{"type":"x"}');
  const r = run(rules, event);
  assert.equal(r.code, 1);
  assert.match(r.err, /bad\.yaml:4: rules\[0\]\.match\.type: match\.type must be/);
  writeFileSync(event, '[1]');
  assert.equal(run(join(dir, 'ok.yaml'), event).code, 2);
});

test('rules registry - hot reload: a good edit goes live, a bad edit keeps the last good rules', async () => {
  const file = join(dir, 'live.yaml');
  writeFileSync(file, RULES);
  const errors: string[] = [];
  const reg = new RulesRegistry({ info() {}, error: (o) => errors.push(JSON.stringify(o)) }, 50);
  try {
    await reg.sync(new Map([['acme', file]]));
    const first = reg.get('acme');
    assert.equal(first?.rules[0]?.name, 'refund-approved');
    writeFileSync(file, RULES.replace('refund-approved', 'refund-ok'));
    await waitFor(() => reg.get('acme')?.rules[0]?.name === 'refund-ok');
    writeFileSync(file, `${RULES}  - name: broken\n    match: { type: x }\n    actions: []\n`);
    await waitFor(() => reg.status('acme')?.error !== null);
    assert.equal(reg.get('acme')?.rules[0]?.name, 'refund-ok', 'the last good rules stay live');
    assert.match(reg.status('acme')!.error!, /live\.yaml:11: rules\[1\]\.actions/);
    assert.equal(errors.length, 1);
    await reg.sync(new Map());
    assert.equal(reg.get('acme'), undefined);
  } finally {
    reg.close();
  }
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
