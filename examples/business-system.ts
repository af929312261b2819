#!/usr/bin/env node
/**
 * An example business system (an order / logistics / after-sales backend) talking to Switchboard over
 * NATS, as docs/INTEGRATION.md describes:
 *
 * - publishes business events on `sb.biz.<tenant>.events.<type>` with a `Nats-Msg-Id` header
 *   (JetStream publish: the reply says whether the broker's stream took it or saw the id before);
 * - answers context look-ups on `sb.biz.<tenant>.ctx.<kind>` (orders, shipments, tickets);
 * - handles agent actions on `sb.biz.<tenant>.action.<name>` (mark-abnormal, issue-coupon).
 *
 * Run against `npm start` (NATS on 14222):
 *   node dist/examples/business-system.js --tenant acme --demo
 * Options: --nats <url> (default nats://127.0.0.1:14222), --cluster <name> (SB_CLUSTER of the broker),
 * --kinds orders,shipments,tickets (kinds to answer), --slow shipments=2000 (answer late),
 * --events <file.jsonl> (publish each line {type, id, data}), --demo (publish a few demo events),
 * --msgpack (publish events as msgpack), --exit (exit after publishing).
 * Prints one JSON line per thing it did, starting with {"ready":true}.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { encode } from '@msgpack/msgpack';
import { connect, headers, type Msg, type NatsConnection } from 'nats';

const { values } = parseArgs({
  options: {
    nats: { type: 'string', default: 'nats://127.0.0.1:14222' },
    cluster: { type: 'string', default: 'default' },
    tenant: { type: 'string', default: 'acme' },
    kinds: { type: 'string', default: 'orders,shipments,tickets' },
    slow: { type: 'string', multiple: true, default: [] },
    events: { type: 'string' },
    demo: { type: 'boolean', default: false },
    msgpack: { type: 'boolean', default: false },
    exit: { type: 'boolean', default: false },
  },
});

const root = values.cluster === 'default' ? 'sb' : `sb-${values.cluster}`;
const tenant = values.tenant;
const slow = new Map(
  values.slow.map((s) => s.split('=') as [string, string]).map(([k, v]) => [k, Number(v)]),
);
const say = (obj: object) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

// What this pretend backend knows about customers.
const ORDERS: Record<string, Array<{ id: string; status: string; total: string }>> = {
  alice: [
    { id: 'A-1001', status: 'shipped', total: '59.90 EUR' },
    { id: 'A-1002', status: 'paid', total: '12.00 EUR' },
  ],
};

function answerContext(kind: string, visitor: string): unknown {
  switch (kind) {
    case 'orders':
      return { orders: ORDERS[visitor] ?? [] };
    case 'shipments':
      return {
        shipments: (ORDERS[visitor] ?? [])
          .filter((o) => o.status === 'shipped')
          .map((o) => ({ order: o.id, carrier: 'DHL', eta: '2 days' })),
      };
    case 'tickets':
      return { tickets: [] };
    default:
      return { error: `unknown kind ${kind}` };
  }
}

function serveContext(nc: NatsConnection, kind: string): void {
  nc.subscribe(`${root}.biz.${tenant}.ctx.${kind}`, {
    callback: (err, msg: Msg) => {
      if (err) return;
      const req = JSON.parse(new TextDecoder().decode(msg.data)) as { conv: string; visitor: string };
      const reply = () => {
        msg.respond(json(answerContext(kind, req.visitor)));
        say({ context: kind, conv: req.conv });
      };
      const delay = slow.get(kind);
      if (delay) setTimeout(reply, delay);
      else reply();
    },
  });
}

function serveActions(nc: NatsConnection): void {
  nc.subscribe(`${root}.biz.${tenant}.action.>`, {
    callback: (err, msg: Msg) => {
      if (err) return;
      const req = JSON.parse(new TextDecoder().decode(msg.data)) as {
        id: string;
        action: string;
        conv: string;
        agent: string;
        args: Record<string, unknown>;
      };
      let reply: { ok: boolean; message: string; data?: unknown };
      if (req.action === 'mark-abnormal') {
        reply =
          typeof req.args['order'] === 'string'
            ? {
                ok: true,
                message: `order ${req.args['order']} marked abnormal`,
                data: { order: req.args['order'], flag: 'abnormal' },
              }
            : { ok: false, message: 'args.order is required' };
      } else if (req.action === 'issue-coupon') {
        reply = {
          ok: true,
          message: `coupon SORRY-${req.id.slice(0, 6)} issued`,
          data: { code: `SORRY-${req.id.slice(0, 6)}` },
        };
      } else reply = { ok: false, message: `unknown action ${req.action}` };
      msg.respond(json(reply));
      say({ action: req.action, conv: req.conv, agent: req.agent, ok: reply.ok });
    },
  });
}

interface EventLine {
  type: string;
  id: string;
  data: Record<string, unknown>;
}

async function publish(nc: NatsConnection, events: EventLine[]): Promise<void> {
  const js = nc.jetstream();
  let duplicates = 0;
  for (const e of events) {
    const h = headers();
    const body = values.msgpack ? encode(e.data) : json(e.data);
    // msgID sets the Nats-Msg-Id header: the broker's stream stores an id once inside its window.
    const ack = await js.publish(`${root}.biz.${tenant}.events.${e.type}`, body, { msgID: e.id, headers: h });
    if (ack.duplicate) duplicates++;
  }
  say({ published: events.length, duplicates });
}

const DEMO: EventLine[] = [
  {
    type: 'order.shipped',
    id: 'demo-ship-A-1001',
    data: {
      visitor: 'alice',
      order: { id: 'A-1001', status: 'shipped' },
      shipment: { carrier: 'DHL', tracking: 'JJD0001' },
    },
  },
  {
    type: 'refund.approved',
    id: 'demo-refund-R-77',
    data: { visitor: 'alice', refund: { id: 'R-77', amount: '12.00 EUR' } },
  },
  {
    type: 'aftersales.ticket',
    id: 'demo-ticket-T-5',
    data: { visitor: 'bob', ticket: { id: 'T-5', subject: 'Broken zipper' } },
  },
];

async function main(): Promise<void> {
  const nc = await connect({ servers: values.nats.split(','), name: `example-business-system-${tenant}` });
  for (const kind of values.kinds.split(',').filter(Boolean)) serveContext(nc, kind);
  serveActions(nc);
  await nc.flush();
  say({ ready: true, root, tenant });
  if (values.events) {
    const lines = readFileSync(values.events, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '');
    await publish(
      nc,
      lines.map((l) => JSON.parse(l) as EventLine),
    );
  }
  if (values.demo) await publish(nc, DEMO);
  if (values.exit) {
    await nc.drain();
    return;
  }
  const stop = async () => {
    await nc.drain();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`business-system: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
