/**
 * A generator's share of the e2e load: its visitors' and agents' sockets, the opening of each conversation
 * (the visitor's first message creates it; on Switchboard its agent, set `away` so the queue assigns nothing
 * by itself, takes it with `accept`, as in docs/PROTOCOL.md; on peers the agent's first message claims it), and
 * the open-loop schedule: message k is due at startAt + k / rate whatever the broker answered before, and
 * goes round-robin over the conversations, alternately from the visitor and from the agent.
 */
import { performance } from 'node:perf_hooks';
import { createAuthenticator } from '../../src/gateway/auth.js';
import { openClient } from '../lib/clients.js';
import type { Envelope } from '../lib/codec.js';
import { pool } from '../lib/pool.js';
import { sleep } from '../lib/units.js';
import { type BenchSocket, OpenError, type Role } from '../lib/ws-client.js';
import {
  conversationIds,
  type E2eInit,
  type E2ePhase,
  type E2eReady,
  type SetupProgress,
} from './messages.js';
import { Recorder } from './recorder.js';

const TOKEN_TTL_S = 24 * 3600;
const CONNECT_CONCURRENCY = 64;
const SETUP_REPLY_TIMEOUT_MS = 30_000;
/** A `busy` send is retried with the same cmid this many times, then counted as an error. */
export const MAX_BUSY_RETRIES = 8;
const DRAIN_POLL_MS = 50;
const PROGRESS_INTERVAL_MS = 500;

interface User {
  id: string;
  tenant: string;
  role: Role;
  node: string;
  socket?: BenchSocket;
}

interface Conversation {
  conv: string;
  visitor: User;
  agent: User;
}

interface Pending {
  conv: string;
  frame: Record<string, unknown>;
  sender: User;
  /** performance.now() ms at which the message was due. */
  scheduledAt: number;
  measured: boolean;
  acked: boolean;
  delivered: boolean;
  attempts: number;
}

export class ConversationLoad {
  readonly recorder = new Recorder();
  private readonly users = new Map<string, User>();
  private convs: Conversation[] = [];
  private readonly pending = new Map<string, Pending>();
  /** Setup requests waiting for their answer (`ack`, `done`, or `error` with its `code`), by cmid or ref. */
  private readonly setupWaiters = new Map<string, (f: Envelope) => void>();
  private readonly body: string;
  private endRequested = false;

  constructor(
    private readonly init: E2eInit,
    private readonly progress: (p: SetupProgress) => void,
  ) {
    const seed = 'Hello! Where is my parcel? The order number is on the receipt, could you check it please. ';
    this.body = seed.repeat(Math.ceil(init.bodyChars / seed.length)).slice(0, init.bodyChars);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Opens every socket, then every conversation. Resolves with the figures of the `ready` message. */
  async setup(): Promise<E2eReady> {
    const t0 = Date.now();
    const { init } = this;
    const p = init.population;
    const user = (id: string, tenant: string, role: Role, node: string): User => {
      let u = this.users.get(id);
      if (!u) {
        u = { id, tenant, role, node };
        this.users.set(id, u);
      }
      return u;
    };
    const convs: Conversation[] = [];
    for (let i = init.convFrom; i < init.convTo; i++) {
      const ids = conversationIds(p, i);
      const n = init.nodes.length;
      // With several nodes the two sides of a conversation sit on different nodes: deliveries cross NATS.
      const visitor = user(ids.visitor, ids.tenant, 'visitor', init.nodes[i % n]!);
      const agent = user(ids.agent, ids.tenant, 'agent', init.nodes[(ids.agentIndex + 1) % n]!);
      convs.push({ conv: ids.conv, visitor, agent });
    }
    const failures: Record<string, number> = {};
    const byWorker: Record<string, number> = {};
    const auth = createAuthenticator(init.jwtSecret);
    const users = [...this.users.values()];
    let opened = 0;
    let failed = 0;
    const report = setInterval(() => {
      this.progress({
        type: 'setup-progress',
        generator: init.generator,
        sockets: users.length,
        opened,
        failed,
      });
    }, PROGRESS_INTERVAL_MS);
    await pool(users, CONNECT_CONCURRENCY, async (u) => {
      const token = await auth.sign({ tenant: u.tenant, sub: u.id, role: u.role }, TOKEN_TTL_S);
      try {
        u.socket = await openClient(init.client, {
          base: u.node,
          role: u.role,
          token,
          identity: { tenant: u.tenant, user: u.id },
          ...(init.localAddress === undefined ? {} : { localAddress: init.localAddress }),
          onFrame: (f) => this.onFrame(u, f),
          onClose: () => this.recorder.count('socketsClosed', true),
        });
        byWorker[u.socket.node] = (byWorker[u.socket.node] ?? 0) + 1;
        opened++;
      } catch (err) {
        const reason = err instanceof OpenError ? err.reason : String(err);
        failures[reason] = (failures[reason] ?? 0) + 1;
        failed++;
      }
    });
    let conversationsFailed = 0;
    const conversationFailures: Record<string, number> = {};
    const switchboard = init.client.protocol === 'switchboard';
    if (switchboard) {
      // Agents go `away` with room for their share: the queue then assigns nothing by itself, and each
      // agent takes exactly its own conversations with `accept`.
      const agents = users.filter((u) => u.role === 'agent');
      await pool(agents, init.setupConcurrency, async (a) => {
        const frame = {
          type: 'status',
          status: 'away',
          capacity: init.population.convsPerAgent,
          ref: `st-${a.id}`,
        };
        const failure = await this.setupRequest(a, `st-${a.id}`, 'status', frame);
        if (failure) conversationFailures[failure] = (conversationFailures[failure] ?? 0) + 1;
      });
    }
    await pool(convs, init.setupConcurrency, async (c, idx) => {
      // The visitor's first message creates the conversation; its agent takes it.
      const failure =
        (await this.setupSend(c.visitor, c.agent, c.conv, `o-${idx}`, 'open')) ??
        (switchboard
          ? await this.setupRequest(c.agent, `c-${idx}`, 'claim', {
              type: 'accept',
              conv: c.conv,
              ref: `c-${idx}`,
            })
          : await this.setupSend(c.agent, c.visitor, c.conv, `c-${idx}`, 'claim'));
      if (failure === undefined) this.convs.push(c);
      else {
        conversationsFailed++;
        conversationFailures[failure] = (conversationFailures[failure] ?? 0) + 1;
      }
    });
    clearInterval(report);
    // The schedule walks conversations in a fixed order; keep it independent of setup completion order.
    this.convs.sort((a, b) => (a.conv < b.conv ? -1 : 1));
    return {
      type: 'ready',
      generator: init.generator,
      sockets: opened,
      conversations: this.convs.length,
      conversationsFailed,
      conversationFailures,
      socketFailures: failures,
      byWorker,
      setupMs: Date.now() - t0,
    };
  }

  /** One setup message, waited for, retried on `busy`; undefined when stored, else why not (`open:timeout`…). */
  private setupSend(
    from: User,
    to: User,
    conv: string,
    cmid: string,
    step: string,
  ): Promise<string | undefined> {
    return this.setupRequest(
      from,
      cmid,
      step,
      this.sendFrame(conv, cmid, 'Hello, I need help with my order.', to),
    );
  }

  /** A setup frame answered by `ack` / `done` (success) or `error` with `ref`; retried on `busy`. */
  private async setupRequest(
    from: User,
    cmid: string,
    step: string,
    frame: Record<string, unknown>,
  ): Promise<string | undefined> {
    for (let attempt = 0; attempt <= MAX_BUSY_RETRIES; attempt++) {
      if (!from.socket?.isOpen()) return `${step}:no-socket`;
      const reply = new Promise<Envelope | undefined>((resolve) => {
        const timer = setTimeout(() => {
          this.setupWaiters.delete(cmid);
          resolve(undefined);
        }, SETUP_REPLY_TIMEOUT_MS);
        this.setupWaiters.set(cmid, (f) => {
          clearTimeout(timer);
          this.setupWaiters.delete(cmid);
          resolve(f);
        });
      });
      from.socket.send(frame);
      const f = await reply;
      if (f?.type === 'ack' || f?.type === 'done') return undefined;
      if (f === undefined) return `${step}:no-answer`;
      if (f.code !== 'busy') return `${step}:${f.code}`;
      await sleep((f.retryAfterMs ?? 100) * (attempt + 1));
    }
    return `${step}:busy`;
  }

  private onFrame(user: User, f: Envelope): void {
    const now = performance.now();
    if (f.type === 'done') {
      if (f.ref !== undefined) this.setupWaiters.get(f.ref)?.(f);
      return;
    }
    if (f.type === 'ack' || f.type === 'error') {
      const ref = f.type === 'ack' ? f.cmid : f.ref;
      if (ref === undefined) return;
      const waiter = this.setupWaiters.get(ref);
      if (waiter) {
        waiter(f);
        return;
      }
      const p = this.pending.get(ref);
      if (!p) return;
      if (f.type === 'ack') {
        if (p.acked) return;
        p.acked = true;
        this.recorder.ack(now - p.scheduledAt, p.measured);
        if (p.delivered) this.pending.delete(ref);
      } else this.onError(ref, p, f.code ?? 'no-code', f.retryAfterMs);
    } else if (f.type === 'msg') {
      // Every participant gets the msg, the sender's own sockets included: only the other side counts.
      if (f.from === user.id || f.cmid === undefined) return;
      const p = this.pending.get(f.cmid);
      if (!p || p.delivered || p.conv !== f.conv) return;
      p.delivered = true;
      this.recorder.delivery(now - p.scheduledAt, p.measured);
      if (p.acked) this.pending.delete(f.cmid);
    }
  }

  private onError(cmid: string, p: Pending, code: string, retryAfterMs: number | undefined): void {
    if (code === 'busy') this.recorder.count('busy', p.measured);
    if (code === 'busy' && p.attempts < MAX_BUSY_RETRIES) {
      p.attempts++;
      // docs/PROTOCOL.md: wait retryAfterMs, with jitter, growing on repeats; same cmid.
      const delay = (retryAfterMs ?? 100) * p.attempts * (1 + Math.random() / 2);
      setTimeout(() => {
        if (this.pending.get(cmid) === p && !p.sender.socket?.send(p.frame))
          this.recorder.count('notSent', p.measured);
      }, delay);
      return;
    }
    this.recorder.error(code, p.measured);
    this.pending.delete(cmid);
  }

  /**
   * A `send` frame. Peers have no conversation actor that knows the participants, so their clients are
   * told the recipient (`to`); Switchboard's frames stay exactly as docs/PROTOCOL.md defines them.
   */
  private sendFrame(conv: string, cmid: string, body: string, to: User): Record<string, unknown> {
    const frame: Record<string, unknown> = { type: 'send', conv, cmid, body };
    if (this.init.client.protocol !== 'switchboard') frame['to'] = to.id;
    return frame;
  }

  /** Stops the running phase's schedule at once (its outstanding messages are still drained). */
  endPhase(): void {
    this.endRequested = true;
  }

  /** Runs one phase's schedule; resolves after the drain, with every outstanding message settled. */
  async runPhase(ph: E2ePhase, onSecond: (second: number, measured: boolean) => void): Promise<void> {
    this.endRequested = false;
    const t0 = performance.now() + (ph.startAt - Date.now());
    const intervalMs = 1000 / ph.rate;
    const total = Math.floor(((ph.warmupMs + ph.durationMs) * ph.rate) / 1000);
    const measuredFrom = Math.ceil((ph.warmupMs * ph.rate) / 1000);
    const n = this.convs.length;
    let second = 0;
    let timer: NodeJS.Timeout | undefined;
    const tick = (): void => {
      const measured = second * 1000 >= ph.warmupMs && second * 1000 < ph.warmupMs + ph.durationMs;
      this.expire();
      onSecond(second, measured);
      second++;
      timer = setTimeout(tick, Math.max(0, t0 + (second + 1) * 1000 - performance.now()));
    };
    timer = setTimeout(tick, Math.max(0, t0 + 1000 - performance.now()));
    let k = 0;
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        const now = performance.now();
        if (this.endRequested) k = total;
        while (k < total && t0 + k * intervalMs <= now) {
          if (n > 0)
            this.sendScheduled(
              ph.phase,
              k,
              this.convs[k % n]!,
              Math.floor(k / n),
              t0 + k * intervalMs,
              k >= measuredFrom,
            );
          k++;
        }
        if (k >= total) resolve();
        // Wakes once the next message is due (rounded up to a whole millisecond, timers' resolution),
        // not every millisecond: at a few hundred messages per second per generator most 1 ms wake-ups
        // sent nothing, and each costs ~50 µs of CPU on this machine (issue #13: the generator's cost).
        else setTimeout(pump, Math.max(1, Math.ceil(t0 + k * intervalMs - performance.now())));
      };
      setTimeout(pump, Math.max(0, t0 - performance.now()));
    });
    const drainEnd = performance.now() + ph.drainMs;
    while (this.pending.size > 0 && performance.now() < drainEnd) await sleep(DRAIN_POLL_MS);
    clearTimeout(timer);
    this.expire(Number.POSITIVE_INFINITY);
    // The last, partial second (late answers of the drain) still belongs to this phase's series.
    onSecond(second, false);
  }

  private sendScheduled(
    phase: number,
    k: number,
    c: Conversation,
    round: number,
    dueAt: number,
    measured: boolean,
  ): void {
    const sender = round % 2 === 0 ? c.visitor : c.agent;
    this.recorder.count('scheduled', measured);
    const cmid = `${phase}.${k.toString(36)}`;
    const frame = this.sendFrame(c.conv, cmid, this.body, sender === c.visitor ? c.agent : c.visitor);
    if (!sender.socket?.send(frame)) {
      this.recorder.count('notSent', measured);
      return;
    }
    this.recorder.sent(performance.now() - dueAt, measured);
    this.pending.set(cmid, {
      conv: c.conv,
      frame,
      sender,
      scheduledAt: dueAt,
      measured,
      acked: false,
      delivered: false,
      attempts: 0,
    });
  }

  /** Settles messages older than the ack timeout (all of them with Infinity) as lost. */
  private expire(olderThanMs = this.init.ackTimeoutMs): void {
    const now = performance.now();
    // Insertion order is schedule order, so the first young entry ends the scan.
    for (const [cmid, p] of this.pending) {
      if (olderThanMs !== Number.POSITIVE_INFINITY && now - p.scheduledAt <= olderThanMs) break;
      if (!p.acked) this.recorder.count('lostAck', p.measured);
      if (!p.delivered) this.recorder.count('lostDelivery', p.measured);
      this.pending.delete(cmid);
    }
  }

  async close(): Promise<void> {
    await pool([...this.users.values()], CONNECT_CONCURRENCY, async (u) => u.socket?.close());
  }
}
