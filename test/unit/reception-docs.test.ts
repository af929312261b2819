/**
 * The support desk's docs against its code (issue #17): docs/PROTOCOL.md "Reception frames" has a
 * section for every desk frame, each client example parses as that frame and each server example has
 * exactly the fields the code builds; its limits table gives the code's bounds; docs/INTEGRATION.md
 * "Bot first" shows exactly the requests ReceptionService sends and an answer it accepts, on the subject it
 * uses; the example tenants file's `reception` sections validate.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clusterNames } from '../../src/cluster/names.js';
import { parseClientFrame, VISITOR_ONLY_FRAMES } from '../../src/protocol/frames.js';
import {
  deskClosedFrame,
  handoffFrame,
  MAX_LEAVE_CONTACT_CHARS,
  RECEPTION_SERVER_FRAMES,
  RECEPTION_VISITOR_FRAMES,
  requeuedFrame,
} from '../../src/protocol/reception-frames.js';
import { parseBotAnswer, ReceptionService } from '../../src/reception/service.js';
import {
  DEFAULT_BOT_MAX_REPLY_CHARS,
  DEFAULT_BOT_TIMEOUT_MS,
  DEFAULT_LEFT_MESSAGE_MAX_CHARS,
  DEFAULT_LEFT_MESSAGES_MAX_STORED,
  MAX_BOT_SUMMARY_CHARS,
  MAX_BOT_TIMEOUT_MS,
  MAX_HOLIDAYS,
  MAX_LEFT_MESSAGE_MAX_CHARS,
  MAX_REASSIGN_S,
  MAX_SCHEDULE_ENTRIES,
  MIN_BOT_TIMEOUT_MS,
  RECEPTION_SECTION,
  receptionSettingsOf,
} from '../../src/reception/settings.js';
import { parseTenantsYaml } from '../../src/tenants.js';
import { SimulatedClock } from '../fixtures/simulated-clock.js';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const protocol = readFileSync(root('docs/PROTOCOL.md'), 'utf8');
const integration = readFileSync(root('docs/INTEGRATION.md'), 'utf8');

/** The text of the section under `heading` (exact line), up to the next heading of the same or a higher level. */
function section(doc: string, heading: string): string {
  const lines = doc.split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `the doc has a "${heading}" section`);
  const level = heading.indexOf(' ');
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.indexOf(' ') <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

function jsonBlocks(text: string): Array<Record<string, unknown>> {
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)].map(
    (m) => JSON.parse(m[1]!) as Record<string, unknown>,
  );
}

const keys = (o: object) => Object.keys(o).sort();

test('reception docs - every desk client frame has its section, and its example parses as that frame', () => {
  for (const type of RECEPTION_VISITOR_FRAMES) {
    assert.ok(VISITOR_ONLY_FRAMES.has(type), `${type} is visitor-only in the code`);
    const text = section(protocol, `### \`${type}\` (client → server)`);
    const [example] = jsonBlocks(text);
    assert.ok(example, `${type} has a JSON example`);
    assert.equal(parseClientFrame(example, 4000).type, type);
    // Every field the table names is one the frame carries (the example carries the required ones).
    const fields = [...text.matchAll(/^\| `([a-z]+)`/gm)].map((m) => m[1]);
    for (const f of keys(example))
      if (f !== 'type') assert.ok(fields.includes(f), `${type}: ${f} is in its table`);
  }
  assert.match(section(protocol, '## Reception frames'), new RegExp(`at most ${MAX_LEAVE_CONTACT_CHARS}`));
});

test('reception docs - every desk server frame has its section with exactly the fields the code builds', () => {
  const built: Record<string, object> = {
    desk_closed: deskClosedFrame('c', 'closed', null, 10),
    requeued: requeuedFrame('c'),
    handoff: handoffFrame('c', null, 'bot'),
  };
  assert.deepEqual(keys(built), [...RECEPTION_SERVER_FRAMES].sort());
  for (const type of RECEPTION_SERVER_FRAMES) {
    const [example] = jsonBlocks(section(protocol, `### \`${type}\` (server → client)`));
    assert.ok(example, `${type} has a JSON example`);
    assert.equal(example['type'], type);
    assert.deepEqual(keys(example), keys(built[type]!), `${type}: documented fields = built fields`);
  }
  // The agent's `unassigned` names the new reason.
  assert.match(section(protocol, '### `unassigned`'), /`"no_reply"`/);
});

test('reception docs - the limits table gives the code bounds and defaults', () => {
  const rows = section(protocol, '## Reception frames')
    .split('\n')
    .filter((l) => l.startsWith('| `') || l.startsWith('| bot'))
    .map((l) => l.split('|').map((c) => c.trim()));
  const row = (name: string) => {
    const r = rows.find((cells) => cells[1] === name);
    assert.ok(r, `a limits row for ${name}`);
    return r.join(' ');
  };
  assert.match(row('`noReplyReassignS`'), new RegExp(`1–${MAX_REASSIGN_S} s`));
  assert.match(row('`hours.weekly` entries'), new RegExp(`\\b${MAX_SCHEDULE_ENTRIES}\\b`));
  assert.match(row('`hours.holidays`'), new RegExp(`\\b${MAX_HOLIDAYS}\\b`));
  assert.match(
    row('`hours.leaveMessage.maxChars`'),
    new RegExp(`${DEFAULT_LEFT_MESSAGE_MAX_CHARS} .*1–${MAX_LEFT_MESSAGE_MAX_CHARS}`),
  );
  assert.match(row('`hours.leaveMessage.maxStored`'), new RegExp(`${DEFAULT_LEFT_MESSAGES_MAX_STORED}`));
  assert.match(
    row('`bot.timeoutMs`'),
    new RegExp(`${DEFAULT_BOT_TIMEOUT_MS} .*${MIN_BOT_TIMEOUT_MS}–${MAX_BOT_TIMEOUT_MS}`),
  );
  assert.match(row('`bot.maxReplyChars`'), new RegExp(`${DEFAULT_BOT_MAX_REPLY_CHARS}`));
  assert.match(row('bot summary'), new RegExp(`${MAX_BOT_SUMMARY_CHARS}`));
});

test('reception docs - INTEGRATION.md shows exactly the bot requests the broker sends, on its subject', async () => {
  const text = section(integration, '## Bot first: `sb.biz.<tenant>.bot`');
  const [message, handoff, answer] = jsonBlocks(text);
  assert.ok(message && handoff && answer, 'three JSON examples: message, handoff, answer');
  const sent: Array<{ subject: string; body: Record<string, unknown> }> = [];
  const settings = receptionSettingsOf(RECEPTION_SECTION.parse({ bot: {} }));
  const desk = new ReceptionService({
    actors: {
      ask: async (_t: string, conv: string, msg: { type: string }) =>
        msg.type === 'view' ? { conv, visitor: 'alice', skill: null } : { conv, agent: null, position: 1 },
    },
    transport: {
      request: async (subject: string, data: Uint8Array) => {
        sent.push({ subject, body: JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown> });
        return new TextEncoder().encode(JSON.stringify(answer));
      },
    },
    names: clusterNames(),
    settings: () => settings,
    clock: new SimulatedClock(),
    postMessage: async () => ({ cmid: 'x', conv: 'c', seq: 1, id: 'i', ts: 0 }),
    notify: () => {},
    warn: () => {},
  });
  await desk.toBot('acme', 'c-1042', 'alice', { seq: 3, body: 'Where is my parcel?' });
  await desk.visitorAsksForPerson('acme', 'c-1042', 'alice');
  assert.equal(sent[0]?.subject, 'sb.biz.acme.bot', 'the subject of the section title (default cluster)');
  assert.deepEqual(keys(sent[0]!.body), keys(message));
  assert.deepEqual(sent[0]!.body, message, 'the example is what the broker sends for it');
  assert.deepEqual(keys(sent[1]!.body), keys(handoff));
  assert.equal(sent[1]!.body['type'], 'handoff');
  // The documented answer is accepted as documented.
  const parsed = parseBotAnswer(new TextEncoder().encode(JSON.stringify(answer)), 2000);
  assert.deepEqual(parsed, { reply: answer['reply'], handoff: true, summary: answer['summary'] });
  // The YAML example of the section validates as a desk section.
  const yaml = /```yaml\n([\s\S]*?)```/.exec(text)?.[1] ?? '';
  parseTenantsYaml(`version: 1\ntenants:\n  acme:\n${yaml.replace(/^/gm, '    ')}`);
});

test('reception docs - the example tenants files document the desk section, and it validates', () => {
  for (const file of ['deploy/tenants.example.yaml', 'examples/tenants.yaml']) {
    const text = readFileSync(root(file), 'utf8');
    const parsed = parseTenantsYaml(text);
    const desks = Object.values(parsed.tenants ?? {}).filter((t) => t.reception !== undefined);
    assert.ok(desks.length > 0, `${file} has a tenant with a desk section`);
  }
});
