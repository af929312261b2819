#!/usr/bin/env node
/**
 * An example consumer of Switchboard's conversation events (`sb.out.<tenant>.<type>`: created,
 * assigned, transferred, message, closed, rated; docs/INTEGRATION.md), two ways:
 *
 * - `--mode core` (default): a plain NATS subscription, live only (what happens while it runs);
 * - `--mode durable`: a durable JetStream consumer of its own on the broker's `sb_out` stream, so it
 *   resumes where it left off after a restart (at-least-once: de-duplicate on the event `id`).
 *
 * `message` events are published only for tenants that consume them: declare `outEvents: [message]`
 * in the tenant's `integration` section of the tenants file (docs/INTEGRATION.md).
 *
 * Run against `npm start`:  node dist/examples/out-consumer.js --tenant acme
 * Also a webhook receiver: `--webhook-port 9000 --secret <s>` serves POST / and verifies signatures
 * with the recipe of docs/INTEGRATION.md.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { AckPolicy, connect, DeliverPolicy } from 'nats';

const { values } = parseArgs({
  options: {
    nats: { type: 'string', default: 'nats://127.0.0.1:14222' },
    cluster: { type: 'string', default: 'default' },
    tenant: { type: 'string', default: '*' },
    mode: { type: 'string', default: 'core' },
    durable: { type: 'string', default: 'example-out-consumer' },
    'webhook-port': { type: 'string' },
    secret: { type: 'string', default: '' },
  },
});
const root = values.cluster === 'default' ? 'sb' : `sb-${values.cluster}`;
const subject = `${root}.out.${values.tenant}.>`;
const print = (how: string, data: Uint8Array) =>
  process.stdout.write(`${how} ${new TextDecoder().decode(data)}\n`);

/** The verification recipe: HMAC-SHA256(secret, "<t>.<raw body>") == v1, and t within 5 minutes. */
function verify(secret: string, header: string | undefined, body: Buffer): boolean {
  const parts = Object.fromEntries((header ?? '').split(',').map((p) => p.split('=') as [string, string]));
  const t = Number(parts['t']);
  if (
    !Number.isInteger(t) ||
    Math.abs(Date.now() / 1000 - t) > 300 ||
    !/^[0-9a-f]{64}$/.test(parts['v1'] ?? '')
  )
    return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(parts['v1']!, 'hex'));
}

async function main(): Promise<void> {
  if (values['webhook-port']) {
    createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const ok = verify(values.secret, req.headers['x-switchboard-signature'] as string | undefined, body);
        res.writeHead(ok ? 204 : 401).end();
        print(ok ? 'webhook' : 'webhook-BAD-SIGNATURE', body);
      });
    }).listen(Number(values['webhook-port']), '127.0.0.1');
    process.stdout.write(`webhook receiver on http://127.0.0.1:${values['webhook-port']}/\n`);
  }
  const nc = await connect({ servers: values.nats.split(','), name: 'example-out-consumer' });
  if (values.mode === 'durable') {
    const jsm = await nc.jetstreamManager();
    await jsm.consumers.add(`${root}_out`, {
      durable_name: values.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      filter_subject: subject,
    });
    const consumer = await nc.jetstream().consumers.get(`${root}_out`, values.durable);
    process.stdout.write(`consuming ${subject} from stream ${root}_out as ${values.durable}\n`);
    for await (const m of await consumer.consume()) {
      print('event', m.data);
      m.ack();
    }
  } else {
    process.stdout.write(`subscribed to ${subject}\n`);
    for await (const m of nc.subscribe(subject)) print('event', m.data);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`out-consumer: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
