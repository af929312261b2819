/**
 * The support desk's docs match the code (issue #17): docs/PROTOCOL.md documents every desk frame the
 * parser accepts, every agent-only frame in "How a client frame is checked", the new `msg` / `messages`
 * fields and the `desk` settings with their defaults and bounds; docs/INTEGRATION.md every out event
 * type and the desk fields of `message` events.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BUILTIN_DESK_SETTINGS, deskSchema } from '../../src/desk/settings.js';
import { OUT_EVENT_TYPES } from '../../src/integration/events.js';
import { DESK_AGENT_ONLY_FRAMES } from '../../src/protocol/desk-frames.js';
import { SwitchboardError } from '../../src/protocol/errors.js';
import { AGENT_ONLY_FRAMES, parseClientFrame } from '../../src/protocol/frames.js';

const read = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../../docs/${name}`, import.meta.url)), 'utf8');
const protocol = read('PROTOCOL.md');
const integration = read('INTEGRATION.md');

/** The text of the `## title` section (up to the next `## `). */
function section(doc: string, title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `a "## ${title}" section`);
  const end = doc.indexOf('\n## ', start + 4);
  return doc.slice(start, end < 0 ? undefined : end);
}

const DESK_CLIENT_FRAMES = ['note', 'recall', 'edit', 'label', 'canned'];

test('desk docs - every desk client frame is parsed, and documented with its JSON form', () => {
  const desk = section(protocol, 'Support desk');
  for (const type of DESK_CLIENT_FRAMES) {
    try {
      parseClientFrame({ type }, 4000);
    } catch (err) {
      assert.ok(err instanceof SwitchboardError);
      assert.notEqual(err.code, 'unknown_type', `'${type}' is a client frame`);
    }
    assert.ok(
      desk.includes(`{type: "${type}"`) || desk.includes(`"type": "${type}"`),
      `PROTOCOL.md "Support desk" shows the '${type}' frame`,
    );
  }
  for (const type of ['canned', 'labels', 'skip'])
    assert.ok(desk.includes(`"${type}"`), `server frame '${type}'`);
  // A frame type the docs do not name is not accepted.
  assert.throws(() => parseClientFrame({ type: 'annotate' }, 4000), { code: 'unknown_type' });
});

test('desk docs - the agent-only frames are the ones "How a client frame is checked" lists', () => {
  const step = /5a\. An agent-only frame \(([^)]*)\)/.exec(protocol.replace(/\n\s+/g, ' '));
  assert.ok(step, 'step 5a names the agent-only frames');
  const listed = new Set([...step[1]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]));
  assert.deepEqual([...listed].sort(), [...AGENT_ONLY_FRAMES].sort());
  for (const f of DESK_AGENT_ONLY_FRAMES) assert.ok(AGENT_ONLY_FRAMES.has(f));
});

test('desk docs - the msg and messages fields of the desk are in their tables', () => {
  const msg = protocol.slice(protocol.indexOf('### `msg`'), protocol.indexOf('### `error`'));
  for (const field of ['internal', 'change', 'target', 'recalled', 'edited'])
    assert.match(msg, new RegExp(`\\| \`${field}\`\\s*\\|`), `msg documents '${field}'`);
  const messages = protocol.slice(protocol.indexOf('### `messages`'), protocol.indexOf('### `revealed`'));
  assert.match(messages, /\| `skipped` \|/);
});

test('desk docs - every desk setting is documented with its default and bounds', () => {
  const desk = section(protocol, 'Support desk');
  for (const [key, value] of Object.entries(BUILTIN_DESK_SETTINGS)) {
    const field = deskSchema.shape[key as keyof typeof deskSchema.shape].unwrap();
    const row = desk.split('\n').find((l) => l.startsWith(`| \`${key}\``));
    assert.ok(row, `a row for ${key}`);
    const cells = row.split('|').map((c) => c.trim());
    assert.equal(Number(cells[2]), value, `${key} default`);
    assert.equal(cells[3], `${field.minValue} – ${field.maxValue}`, `${key} bounds`);
  }
});

test('desk docs - INTEGRATION.md documents every out event type and the desk fields of message events', () => {
  const out = section(integration, 'Conversation events out: `sb.out.<tenant>.<type>`');
  for (const type of OUT_EVENT_TYPES)
    assert.match(out, new RegExp(`\\| \`${type}\`\\s+\\|`), `event ${type}`);
  for (const field of ['labels', 'internal: true', 'change: "recall"', 'target'])
    assert.ok(out.includes(field));
});
