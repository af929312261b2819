/**
 * The agent's side of the protocol, without UI: the agent's open conversations (from `convs`,
 * `assigned`, `unassigned`, `closed`), each with its unread count and a bounded window of messages
 * loaded page by page from the history API; the waiting queue (polled); status; typing and read
 * receipts; PII reveal; context and actions. Resumes after every reconnect with `convs` + `sync`.
 */
import {
  Connection,
  type ConnState,
  type Frame,
  FrameError,
  newId,
  tokenClaims,
} from '../shared/connection.js';
import { applyMessage, type Conv, type HistoryPage, type Msg, mergePage, newConv } from './conversation.js';

export type { Conv, Msg };

export const HISTORY_PAGE = 50;
export const QUEUE_POLL_MS = 4000;
export const TYPING_SHOW_MS = 4000;
export const TYPING_SEND_EVERY_MS = 3000;
export const READ_SEND_EVERY_MS = 500;
export const TOKEN_EXPIRED_NOTICE = 'token_expired: sign in again';
/** Conversations kept in the list (the server lists at most 50 open ones per `convs`). */
export const MAX_CONVERSATIONS = 200;
/** Agent messages sent and not yet acknowledged; more are refused until some are. */
export const MAX_PENDING_SENDS = 100;
const RETRYABLE = new Set(['busy', 'unavailable', 'timeout', 'internal', 'rate_limited']);

export interface AgentView {
  state: ConnState;
  user: string;
  canReveal: boolean;
  status: string;
  capacity: number | null;
  load: number | null;
  convs: Map<string, Conv>;
  queue: { conv: string; position: number; visitor?: string; skill?: string | null }[];
  selected: string | undefined;
  notice: string | undefined;
}

export class AgentConsole {
  readonly view: AgentView;
  private readonly conn: Connection;
  private readonly listeners = new Set<() => void>();
  private lastTyping = 0;
  private readonly readTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Sends awaiting their ack, by cmid: resent with the same cmid after a reconnect or a retryable error. */
  private readonly pending = new Map<string, { conv: string; body: string }>();
  private poll: ReturnType<typeof setInterval> | undefined;
  /** Called for a message that arrives in a conversation not on screen (desktop notifications). */
  onIncoming: ((c: Conv, m: Msg) => void) | undefined;

  constructor(
    private readonly base: string,
    private readonly token: string,
  ) {
    const claims = tokenClaims(token);
    const perms = Array.isArray(claims['perms']) ? (claims['perms'] as unknown[]) : [];
    this.view = {
      state: 'connecting',
      user: String(claims['sub'] ?? ''),
      canReveal: perms.includes('pii.reveal'),
      status: 'online',
      capacity: null,
      load: null,
      convs: new Map(),
      queue: [],
      selected: undefined,
      notice: undefined,
    };
    const ws = base.replace(/^http/, 'ws');
    this.conn = new Connection({
      url: `${ws}/ws/agent`,
      // The console cannot renew an agent's token by itself (the SSO issues it): once it has
      // expired, say so; the agent signs in again.
      getToken: async () => {
        if (Number(claims['exp'] ?? 0) * 1000 <= Date.now()) this.view.notice = TOKEN_EXPIRED_NOTICE;
        return token;
      },
      onFrame: (f) => this.onFrame(f),
      onWelcome: () => void this.resume(),
      onState: (s) => {
        this.view.state = s;
        this.changed();
      },
    });
    this.conn.start();
    this.poll = setInterval(() => void this.refreshQueue(), QUEUE_POLL_MS);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  stop(): void {
    clearInterval(this.poll);
    this.conn.stop();
  }

  /** Runs a request frame; a refusal becomes the visible notice instead of a thrown error. */
  async act(frame: Frame): Promise<Frame | undefined> {
    try {
      const r = await this.conn.request(frame);
      this.view.notice = undefined;
      return r;
    } catch (err) {
      this.view.notice = err instanceof FrameError ? `${err.code}: ${err.message}` : String(err);
      this.changed();
      return undefined;
    }
  }

  async setStatus(status: string, capacity?: number): Promise<void> {
    const r = await this.act({ type: 'status', status, ...(capacity !== undefined ? { capacity } : {}) });
    if (r) Object.assign(this.view, { status: r['status'], capacity: r['capacity'], load: r['load'] });
    this.changed();
  }

  async accept(conv: string): Promise<void> {
    if (await this.act({ type: 'accept', conv })) void this.refreshQueue();
  }

  async transfer(conv: string, to: { agent: string } | { skill: string }): Promise<void> {
    await this.act({ type: 'transfer', conv, to });
  }

  async close(conv: string): Promise<void> {
    await this.act({ type: 'close', conv, reason: 'resolved' });
  }

  /** Sends a message (acked later; resent with its cmid until then). False when too many wait. */
  send(conv: string, body: string): boolean {
    if (this.pending.size >= MAX_PENDING_SENDS || !body.trim()) return false;
    const cmid = newId('a');
    this.pending.set(cmid, { conv, body });
    this.conn.send({ type: 'send', conv, cmid, body });
    return true;
  }

  private resend(cmid: string): void {
    const p = this.pending.get(cmid);
    if (p) this.conn.send({ type: 'send', conv: p.conv, cmid, body: p.body });
  }

  typing(conv: string): void {
    const now = Date.now();
    if (now - this.lastTyping < TYPING_SEND_EVERY_MS) return;
    this.lastTyping = now;
    this.conn.send({ type: 'typing', conv });
  }

  /** Masked value `index` of message `seq`; every call is audited by the broker before it answers. */
  async reveal(conv: string, seq: number, index: number): Promise<void> {
    const r = await this.act({ type: 'reveal', conv, seq, index });
    const c = this.view.convs.get(conv);
    if (r && c) c.revealed[`${seq}:${index}`] = String(r['value']);
    this.changed();
  }

  async context(conv: string): Promise<void> {
    const r = await this.act({ type: 'context', conv, fresh: true });
    const c = this.view.convs.get(conv);
    if (r && c) c.context = r;
    this.changed();
  }

  async action(conv: string, name: string, args: Record<string, unknown>): Promise<void> {
    const r = await this.act({ type: 'action', conv, name, args });
    const c = this.view.convs.get(conv);
    if (r && c) c.results = [...c.results.slice(-9), r];
    this.changed();
  }

  /** Shows a conversation: loads its newest page once, marks it read. */
  async select(conv: string): Promise<void> {
    this.view.selected = conv;
    const c = this.view.convs.get(conv);
    this.changed();
    if (c && c.context === undefined && c.status === 'assigned') {
      // Pushed at assignment; a console opened later asks once (quietly: a tenant may have none).
      c.context = { type: 'context', items: {} };
      this.conn.request({ type: 'context', conv }).then(
        (r) => {
          c.context = r;
          this.changed();
        },
        () => {},
      );
    }
    if (c && !c.loaded) await this.loadOlder(conv);
    this.markRead(conv);
  }

  /**
   * Marks a conversation read up to its newest message. The `read` frame goes out at most every
   * READ_SEND_EVERY_MS per conversation (a busy conversation would otherwise spend the
   * connection's frame rate on receipts); the local unread count drops at once.
   */
  markRead(conv: string): void {
    const c = this.view.convs.get(conv);
    if (!c) return;
    if (c.status !== 'assigned' || c.lastSeq <= c.readSeq) return;
    c.readSeq = c.lastSeq;
    if (!this.readTimers.has(conv)) {
      this.readTimers.set(
        conv,
        setTimeout(() => {
          this.readTimers.delete(conv);
          const now = this.view.convs.get(conv);
          if (now && now.status === 'assigned') this.conn.send({ type: 'read', conv, seq: now.readSeq });
        }, READ_SEND_EVERY_MS),
      );
    }
    this.changed();
  }

  /** The next older page from the history API (newest page first time). */
  async loadOlder(conv: string): Promise<void> {
    const c = this.view.convs.get(conv);
    if (!c || (c.loaded && c.older === null)) return;
    const q = new URLSearchParams({ limit: String(HISTORY_PAGE) });
    if (c.loaded && c.older !== null) q.set('before', String(c.older));
    const res = await fetch(`${this.base}/api/v1/conversations/${encodeURIComponent(conv)}/messages?${q}`, {
      headers: { authorization: `Bearer ${this.token}` },
    });
    if (!res.ok) {
      this.view.notice = `history: HTTP ${res.status}`;
      this.changed();
      return;
    }
    mergePage(c, (await res.json()) as HistoryPage);
    this.changed();
  }

  async refreshQueue(): Promise<void> {
    if (this.view.state !== 'open') return;
    try {
      const res = await fetch(`${this.base}/api/v1/queue`, {
        headers: { authorization: `Bearer ${this.token}` },
      });
      if (!res.ok) return;
      const body = (await res.json()) as { items: AgentView['queue'] };
      this.view.queue = body.items.slice(0, 100);
      this.changed();
    } catch {
      // offline: the next poll tries again
    }
  }

  private async resume(): Promise<void> {
    void this.setStatus(this.view.status);
    void this.refreshQueue();
    const r = await this.act({ type: 'convs' });
    if (!r) return;
    for (const cmid of this.pending.keys()) this.resend(cmid);
    const open = new Set<string>();
    for (const it of (r['items'] as Frame[]) ?? []) {
      const conv = String(it['conv']);
      open.add(conv);
      const c = this.ensure(conv, String(it['visitor']));
      c.status = 'assigned';
      c.readSeq = Math.max(c.readSeq, Number(it['readSeq'] ?? 0));
      const lastSeq = Number(it['lastSeq'] ?? 0);
      const have = c.messages.at(-1)?.seq ?? 0;
      if (c.loaded && lastSeq > have) this.conn.send({ type: 'sync', conv, since: have });
      c.lastSeq = Math.max(c.lastSeq, lastSeq);
    }
    for (const c of this.view.convs.values())
      if (c.status === 'assigned' && !open.has(c.conv)) c.status = 'gone';
    if (!this.view.selected) {
      const first = this.view.convs.keys().next();
      if (!first.done) void this.select(first.value);
    }
    this.changed();
  }

  private ensure(conv: string, visitor: string): Conv {
    let c = this.view.convs.get(conv);
    if (!c) {
      c = newConv(conv, visitor);
      this.view.convs.set(conv, c);
      if (this.view.convs.size > MAX_CONVERSATIONS) {
        for (const [k, v] of this.view.convs)
          if (v.status !== 'assigned' && k !== this.view.selected) {
            this.view.convs.delete(k);
            break;
          }
      }
    }
    return c;
  }

  private apply(c: Conv, m: Msg): void {
    if (applyMessage(c, m) === 'gap') {
      this.conn.send({ type: 'sync', conv: c.conv, since: c.messages.at(-1)?.seq ?? 0 });
    }
  }

  private onFrame(f: Frame): void {
    const conv = String(f['conv'] ?? '');
    const c = this.view.convs.get(conv);
    switch (f.type) {
      case 'assigned':
        if (f['agent'] === this.view.user) {
          const n = this.ensure(conv, String(f['visitor']));
          if (!n.visitor) n.visitor = String(f['visitor']);
          n.status = 'assigned';
          n.lastSeq = Math.max(n.lastSeq, Number(f['lastSeq'] ?? 0));
          if (!this.view.selected) void this.select(conv);
          void this.refreshQueue();
        }
        break;
      case 'unassigned':
        if (c) c.status = 'gone';
        break;
      case 'closed':
        if (c) c.status = 'closed';
        break;
      case 'msg': {
        const m = f as unknown as Msg;
        const target = c ?? this.ensure(conv, m.role === 'visitor' ? m.from : '');
        this.apply(target, m);
        if (m.role === 'visitor') target.visitorTypingUntil = 0;
        if (conv === this.view.selected && document.visibilityState === 'visible') this.markRead(conv);
        else if (m.role !== 'agent') this.onIncoming?.(target, m);
        break;
      }
      case 'messages':
        if (c) for (const m of (f['items'] as Msg[]) ?? []) this.apply(c, m);
        if (c && f['more'] === true)
          this.conn.send({ type: 'sync', conv, since: c.messages.at(-1)?.seq ?? 0 });
        break;
      case 'typing':
        if (c) c.visitorTypingUntil = Date.now() + TYPING_SHOW_MS;
        setTimeout(() => this.changed(), TYPING_SHOW_MS + 50);
        break;
      case 'read':
        if (c) c.visitorRead = Math.max(c.visitorRead, Number(f['seq']));
        break;
      case 'context':
        if (c) c.context = f;
        break;
      case 'handoff': {
        // May overtake its `assigned` (another publisher): the visitor is filled in by `assigned`.
        const target = c ?? this.ensure(conv, '');
        target.handoff = f;
        break;
      }
      case 'action_result':
        if (c) c.results = [...c.results.slice(-9), f];
        break;
      case 'ack':
        this.pending.delete(String(f['cmid']));
        break;
      case 'error': {
        const ref = String(f['ref'] ?? '');
        if (this.pending.has(ref) && RETRYABLE.has(String(f['code']))) {
          setTimeout(() => this.resend(ref), Math.max(500, Number(f['retryAfterMs'] ?? 0)));
          break;
        }
        this.pending.delete(ref);
        this.view.notice = `${String(f['code'])}: ${String(f['message'])}`;
        break;
      }
      default:
        return;
    }
    this.changed();
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }
}
