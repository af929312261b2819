/**
 * A steady load of visitors for fault tests: each conversation has one visitor that sends a
 * message, waits for its ack, and on an error, a timeout or a lost socket retries the same cmid
 * (on another node when its node is gone) until it is acked. Records every ack for verification.
 */
import * as assert from 'node:assert/strict';
import { createAuthenticator } from '../../src/gateway/auth.js';
import type { BrokerProcess } from './broker.js';
import { TEST_JWT_SECRET } from './env.js';
import { connectClient, type Frame, type TestClient } from './ws-client.js';

const auth = createAuthenticator(TEST_JWT_SECRET);

export interface LoadOptions {
  tenant: string;
  conversations: number;
  /** Nodes the visitors may connect to (read on every reconnect, so a test can change it). */
  targets: () => BrokerProcess[];
  /** Pause between acked messages of one conversation. */
  intervalMs?: number;
  ackTimeoutMs?: number;
}

export interface LoadStats {
  acked: number;
  retries: number;
  reconnects: number;
  errors: Record<string, number>;
}

export class SteadyLoad {
  /** conv -> cmid -> seq of every acked message. */
  readonly acked = new Map<string, Map<string, number>>();
  readonly stats: LoadStats = { acked: 0, retries: 0, reconnects: 0, errors: {} };
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly opts: LoadOptions) {
    for (let i = 0; i < opts.conversations; i++) this.loops.push(this.run(i));
  }

  conv(i: number): string {
    return `load-${i}`;
  }

  visitor(i: number): string {
    return `lv${i}`;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async connect(i: number, attempt: number): Promise<TestClient> {
    const token = await auth.sign({ tenant: this.opts.tenant, sub: this.visitor(i), role: 'visitor' }, 3600);
    for (let n = attempt; ; n++) {
      const nodes = this.opts.targets();
      const node = nodes[(i + n) % nodes.length]!;
      try {
        return await connectClient(`${node.wsBase}/ws/visitor`, token, 'switchboard.v1.msgpack');
      } catch {
        await sleep(100);
      }
    }
  }

  private async run(i: number): Promise<void> {
    const conv = this.conv(i);
    const acks = new Map<string, number>();
    this.acked.set(conv, acks);
    let attempt = 0;
    let client = await this.connect(i, attempt);
    let k = 1;
    while (this.running) {
      const cmid = `${conv}-${k}`;
      let reply: Frame | undefined;
      try {
        client.send({ type: 'send', conv, cmid, body: `message ${k} of ${conv}` });
        reply = await Promise.race([
          client.next(
            (f) => (f.type === 'ack' || f.type === 'error') && (f.cmid === cmid || f.ref === cmid),
            this.opts.ackTimeoutMs ?? 8000,
          ),
          client.closed.then(() => undefined),
        ]);
      } catch {
        reply = undefined;
      }
      if (reply?.type === 'ack') {
        acks.set(cmid, reply.seq as number);
        this.stats.acked++;
        k++;
        await sleep(this.opts.intervalMs ?? 20);
        continue;
      }
      this.stats.retries++;
      if (reply?.type === 'error') {
        const code = String(reply.code);
        this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
        await sleep(Math.min(Number(reply.retryAfterMs ?? 100), 500));
        continue;
      }
      // Timed out or the socket went away: reconnect (maybe elsewhere) and retry the same cmid.
      this.stats.reconnects++;
      client.ws.terminate();
      client = await this.connect(i, ++attempt);
    }
    await client.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface HistoryRow {
  seq: number;
  cmid: string;
}

/** Reads a conversation's whole history through the HTTP API, oldest first. */
export async function readAll(
  node: BrokerProcess,
  tenant: string,
  user: string,
  conv: string,
): Promise<HistoryRow[]> {
  const token = await auth.sign({ tenant, sub: user, role: 'visitor' }, 600);
  const rows: HistoryRow[] = [];
  let before: number | null | undefined;
  do {
    const q = before ? `?limit=500&before=${before}` : '?limit=500';
    const res = await fetch(`${node.httpBase}/api/v1/conversations/${conv}/messages${q}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200, `history of ${conv}: ${res.status}`);
    const page = (await res.json()) as { items: HistoryRow[]; next: number | null };
    rows.push(...page.items);
    before = page.next;
  } while (before);
  return rows.reverse();
}

/**
 * The guarantees after a fault: seq gap-free from 1, no cmid stored twice, and every acked
 * message stored at the seq it was acked with (a stale owner overwriting it would show here).
 */
export function assertHistoryKeepsAcks(conv: string, rows: HistoryRow[], acks: Map<string, number>): void {
  for (const [idx, r] of rows.entries())
    assert.equal(r.seq, idx + 1, `${conv}: seq gap or disorder at ${idx + 1}`);
  const byCmid = new Map<string, number>();
  for (const r of rows) {
    const first = byCmid.get(r.cmid);
    // Both rows as the API gave them (id, time, sender): which owner wrote which.
    if (first !== undefined)
      assert.fail(
        `${conv}: cmid ${r.cmid} stored twice: ${JSON.stringify(rows[first - 1])} and ${JSON.stringify(r)}; acked at seq ${acks.get(r.cmid)}`,
      );
    byCmid.set(r.cmid, r.seq);
  }
  for (const [cmid, seq] of acks) {
    assert.equal(
      byCmid.get(cmid),
      seq,
      `${conv}: acked ${cmid} at seq ${seq} but history has ${byCmid.get(cmid)}`,
    );
  }
}
