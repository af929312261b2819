#!/usr/bin/env node
/**
 * An example bot for Switchboard's "bot first" routing (docs/INTEGRATION.md, "Bot first"). It answers
 * NATS requests on `sb.biz.<tenant>.bot` (queue group `bots`, so several copies share the load):
 *
 * - `{type: "message", conv, visitor, seq, body}`: a visitor's message. The answer is
 *   `{reply}` (posted to the visitor as role `bot`), or `{reply?, handoff: true, summary}` to hand the
 *   conversation to the queue with a summary for the agent.
 * - `{type: "handoff", conv, visitor}`: the visitor asked for a person; the answer is `{summary}`.
 *
 * What it understands is deliberately small (a few keywords); a real bot would call an intent model or
 * a knowledge base here. It hands off when the visitor writes "person", "human" or "agent".
 *
 * Run against `SB_TENANTS_FILE=examples/tenants.yaml npm start` (its tenant acme-desk has `reception.bot`):
 *   node dist/examples/bot.js --tenant acme-desk
 * Options: --tenant a,b (one or more tenants), --nats <url> (default nats://127.0.0.1:14222),
 * --cluster <name> (SB_CLUSTER of the broker),
 * --subject <suffix> (reception.bot.subject, default bot), --slow <ms> (answer late, to see the timeout).
 * Prints one JSON line per request, starting with {"ready":true}.
 */
import { parseArgs } from 'node:util';
import { connect, type Msg } from 'nats';

const { values } = parseArgs({
  options: {
    nats: { type: 'string', default: 'nats://127.0.0.1:14222' },
    cluster: { type: 'string', default: 'default' },
    tenant: { type: 'string', default: 'acme' },
    subject: { type: 'string', default: 'bot' },
    slow: { type: 'string', default: '0' },
  },
});

const root = values.cluster === 'default' ? 'sb' : `sb-${values.cluster}`;
const subjects = values.tenant.split(',').map((t) => `${root}.biz.${t}.${values.subject}`);
const slowMs = Number(values.slow);
const say = (obj: object) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** What each conversation asked about, for the summary (bounded: oldest conversations forgotten). */
const MAX_REMEMBERED = 1000;
const topics = new Map<string, string[]>();

function remember(conv: string, topic: string): string[] {
  const seen = topics.get(conv) ?? [];
  topics.delete(conv);
  if (!seen.includes(topic)) seen.push(topic);
  topics.set(conv, seen);
  if (topics.size > MAX_REMEMBERED) topics.delete(topics.keys().next().value as string);
  return seen;
}

function summaryOf(conv: string, visitor: string): string {
  const seen = topics.get(conv) ?? [];
  return `${visitor} talked to the bot about: ${seen.length > 0 ? seen.join(', ') : 'nothing yet'}.`;
}

/** The bot's "understanding": keywords to a topic and an answer. */
function answer(conv: string, visitor: string, body: string): Record<string, unknown> {
  const text = body.toLowerCase();
  // A test hook as much as a demo: "long 2000" answers 2000 characters (the reply-size limit).
  const long = /^long (\d{1,6})$/.exec(text.trim());
  if (long) return { reply: 'x'.repeat(Number(long[1])) };
  if (/\b(person|human|agent)\b/.test(text)) {
    remember(conv, 'a person');
    return {
      reply: 'I am handing you to a colleague now.',
      handoff: true,
      summary: summaryOf(conv, visitor),
    };
  }
  if (/\b(parcels?|orders?|shipping|delivery)\b/.test(text)) {
    remember(conv, 'shipping');
    return { reply: 'Parcels leave our warehouse within one working day. Do you have an order number?' };
  }
  if (/\b(returns?|refunds?)\b/.test(text)) {
    remember(conv, 'returns');
    return { reply: 'You can return anything within 30 days. Shall I explain how?' };
  }
  remember(conv, 'other');
  return { reply: 'I am the shop bot. Ask me about shipping or returns, or write "person" for a colleague.' };
}

async function handle(m: Msg): Promise<void> {
  let req: Record<string, unknown>;
  try {
    req = JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>;
  } catch {
    m.respond(json({ handoff: true, summary: 'The bot could not read the request.' }));
    return;
  }
  const conv = String(req['conv'] ?? '');
  const visitor = String(req['visitor'] ?? '');
  if (slowMs > 0) await new Promise((r) => setTimeout(r, slowMs));
  const out =
    req['type'] === 'handoff'
      ? { summary: summaryOf(conv, visitor) }
      : answer(conv, visitor, String(req['body'] ?? ''));
  say({ asked: req['type'], conv, seq: req['seq'] ?? null, answered: out });
  m.respond(json(out));
}

const nc = await connect({ servers: values.nats.split(','), name: `example-bot:${values.tenant}` });
for (const subject of subjects)
  nc.subscribe(subject, {
    queue: 'bots',
    callback: (err, m) => {
      if (err) return;
      handle(m).catch((e: unknown) => say({ error: String(e) }));
    },
  });
await nc.flush();
say({ ready: true, subjects });
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    nc.drain().finally(() => process.exit(0));
  });
