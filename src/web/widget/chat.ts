/**
 * The visitor's side of the protocol, without UI: one conversation at a time, resumed after every
 * (re)connect with `convs` + `sync`, unsent messages kept (same `cmid`) across reloads and resent
 * one at a time in order, gaps in `seq` filled with `sync`. `subscribe` tells the view to redraw.
 */
import { Connection, type ConnState, type Frame, FrameError, newId } from '../shared/connection.js';
import { MAX_UNSENT, type Unsent, WidgetStore } from './store.js';

/** Messages kept in memory for display; older ones are dropped (the widget shows a recent window). */
export const MAX_SHOWN = 200;
export const SYNC_PAGE = 100;
export const TYPING_SHOW_MS = 4000;
export const TYPING_SEND_EVERY_MS = 3000;
const RETRYABLE = new Set(['busy', 'unavailable', 'timeout', 'internal', 'rate_limited']);

export interface ShownMessage {
  seq: number;
  cmid: string;
  mine: boolean;
  body: string;
  ts: number;
  role: string;
  /** Recalled by its sender (body empty) or edited by the agent (body current): docs/PROTOCOL.md. */
  recalled?: boolean;
  edited?: boolean;
}

export interface WidgetView {
  state: ConnState;
  conv: string | undefined;
  messages: ShownMessage[];
  unsent: Unsent[];
  refused: { cmid: string; body: string; code: string }[];
  position: number | null;
  agent: string | null;
  agentTyping: boolean;
  agentRead: number;
  closed: boolean;
  rated: boolean;
  /** The desk is closed (`desk_closed`): its message and the form's bound; null when open. */
  deskClosed: { message: string; maxChars: number } | null;
  /** A message was left with the form. */
  left: boolean;
}

export class VisitorChat {
  readonly view: WidgetView = {
    state: 'connecting',
    conv: undefined,
    messages: [],
    unsent: [],
    refused: [],
    position: null,
    agent: null,
    agentTyping: false,
    agentRead: 0,
    closed: false,
    rated: false,
    deskClosed: null,
    left: false,
  };
  private last = 0;
  private readSent = 0;
  private inflight: string | undefined;
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private lastTypingSent = 0;
  private readonly listeners = new Set<() => void>();
  private readonly conn: Connection;
  private readonly store: WidgetStore;

  constructor(url: string, storageKey: string, getToken: (fresh: boolean) => Promise<string>) {
    this.store = new WidgetStore(storageKey);
    const saved = this.store.load();
    this.view.conv = saved.conv;
    this.view.unsent = saved.unsent;
    this.conn = new Connection({
      url,
      getToken,
      onFrame: (f) => this.onFrame(f),
      onWelcome: () => void this.resume(),
      onState: (s) => {
        this.view.state = s;
        if (s !== 'open') this.inflight = undefined;
        this.changed();
      },
    });
    this.conn.start();
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Queues a message (refused when MAX_UNSENT are waiting) and sends it when its turn comes. */
  send(body: string): boolean {
    const text = body.trim();
    if (!text || this.view.unsent.length >= MAX_UNSENT) return false;
    if (!this.view.conv || this.view.closed) this.startNew();
    const conv = this.view.conv as string;
    this.view.unsent.push({ cmid: newId('c'), conv, body: text, ts: Date.now() });
    this.persist();
    this.pump();
    this.changed();
    return true;
  }

  /** Tells the agent the visitor types, at most every TYPING_SEND_EVERY_MS. */
  typing(): void {
    const now = Date.now();
    if (!this.view.conv || this.view.closed || now - this.lastTypingSent < TYPING_SEND_EVERY_MS) return;
    this.lastTypingSent = now;
    this.conn.send({ type: 'typing', conv: this.view.conv });
  }

  /** Marks everything shown as read (called while the panel is open and visible). */
  markRead(): void {
    const conv = this.view.conv;
    const top = this.view.messages.at(-1);
    if (!conv || !top || top.mine || this.view.closed || top.seq <= this.readSent) return;
    if (this.conn.send({ type: 'read', conv, seq: top.seq })) this.readSent = top.seq;
  }

  /** Leaves a message with the closed desk's form (docs/PROTOCOL.md `leave`); rejects with the error. */
  async leave(body: string, name: string, email: string): Promise<void> {
    if (!this.view.conv) return;
    await this.conn.request({
      type: 'leave',
      conv: this.view.conv,
      body: body.trim(),
      ...(name.trim() ? { name: name.trim() } : {}),
      ...(email.trim() ? { email: email.trim() } : {}),
    });
    this.view.left = true;
    this.changed();
  }

  /** Asks for a person instead of the bot (the `handoff` frame). */
  askPerson(): void {
    if (this.view.conv) void this.conn.request({ type: 'handoff', conv: this.view.conv }).catch(() => {});
  }

  close(): void {
    if (this.view.conv) void this.conn.request({ type: 'close', conv: this.view.conv }).catch(() => {});
  }

  /** Rates the conversation 1-5; a refusal or a lost connection leaves the stars to click again. */
  async rate(score: number): Promise<void> {
    if (!this.view.conv) return;
    try {
      await this.conn.request({ type: 'rate', conv: this.view.conv, score });
      this.view.rated = true;
      this.changed();
    } catch {
      // offline or refused: nothing was recorded
    }
  }

  /** A new conversation id; the old one's messages leave the screen. */
  startNew(): void {
    this.view.conv = newId('w');
    Object.assign(this.view, {
      messages: [],
      refused: [],
      position: null,
      agent: null,
      agentRead: 0,
      closed: false,
      rated: false,
      deskClosed: null,
      left: false,
    });
    this.last = 0;
    this.readSent = 0;
    this.persist();
    this.changed();
  }

  private async resume(): Promise<void> {
    let items: Frame[] = [];
    try {
      const r = await this.conn.request({ type: 'convs' });
      items = (r['items'] as Frame[]) ?? [];
    } catch {
      return; // the socket dropped again: the next welcome resumes
    }
    const open = items.find((i) => i['conv'] === this.view.conv) ?? items[0];
    if (open) {
      if (open['conv'] !== this.view.conv) {
        this.view.conv = String(open['conv']);
        this.view.messages = [];
        this.last = 0;
        this.persist();
      }
      this.view.closed = false;
      this.view.agent = (open['agent'] as string | null) ?? null;
      const lastSeq = Number(open['lastSeq'] ?? 0);
      // A first load shows the newest page only; a resume asks for everything after `last`.
      if (this.last === 0) this.last = Math.max(0, lastSeq - SYNC_PAGE);
      if (lastSeq > this.last) this.conn.send({ type: 'sync', conv: this.view.conv, since: this.last });
    } else if (this.view.conv && this.view.messages.length > 0) {
      this.view.closed = true; // closed while we were away
    } else if (this.view.conv && !this.view.unsent.some((u) => u.conv === this.view.conv)) {
      // A reload after the conversation was closed: start afresh. (With unsent messages it may
      // simply not exist yet: their first send creates it.)
      this.view.conv = undefined;
      this.persist();
    }
    this.pump();
    this.changed();
  }

  /** Sends the oldest unsent message if none is in flight (order within the conversation). */
  private pump(): void {
    const next = this.view.unsent[0];
    if (!next || this.inflight || !this.conn.ready) return;
    this.inflight = next.cmid;
    this.conn.send({ type: 'send', conv: next.conv, cmid: next.cmid, body: next.body });
  }

  private settle(cmid: string): void {
    this.view.unsent = this.view.unsent.filter((u) => u.cmid !== cmid);
    if (this.inflight === cmid) this.inflight = undefined;
    this.persist();
    this.pump();
  }

  private onFrame(f: Frame): void {
    const conv = f['conv'];
    switch (f.type) {
      case 'ack':
        this.settle(String(f['cmid']));
        break;
      case 'error': {
        const ref = String(f['ref'] ?? '');
        const u = this.view.unsent.find((x) => x.cmid === ref);
        if (!u) break;
        const code = String(f['code']);
        if (RETRYABLE.has(code)) {
          this.inflight = undefined;
          setTimeout(() => this.pump(), Math.max(500, Number(f['retryAfterMs'] ?? 0)));
          break;
        }
        this.view.refused = [...this.view.refused.slice(-9), { cmid: u.cmid, body: u.body, code }];
        if (code === 'conversation_closed') this.view.closed = true;
        this.settle(ref);
        break;
      }
      case 'msg':
        if (conv === this.view.conv) this.applyMsg(f);
        break;
      case 'messages':
        if (conv !== this.view.conv) break;
        {
          // Seqs of agents' notes come as `skipped`: received, nothing to show (docs/PROTOCOL.md).
          const skipped = ((f['skipped'] as number[]) ?? []).map(
            (seq): Frame => ({ type: 'skip', seq, skip: true }),
          );
          const all = [...((f['items'] as Frame[]) ?? []), ...skipped];
          all.sort((a, b) => Number(a['seq']) - Number(b['seq']));
          for (const m of all) this.applyMsg(m);
        }
        if (f['more'] === true) this.conn.send({ type: 'sync', conv, since: this.last });
        break;
      case 'skip':
        if (conv === this.view.conv) this.applyMsg({ type: 'skip', seq: f['seq'], skip: true });
        break;
      case 'queue':
        if (conv === this.view.conv) this.view.position = Number(f['position']);
        break;
      case 'assigned':
        if (conv === this.view.conv)
          Object.assign(this.view, { agent: f['agent'], position: null, deskClosed: null });
        break;
      case 'desk_closed':
        if (conv !== this.view.conv) break;
        this.view.deskClosed = {
          message: String(f['message'] ?? ''),
          maxChars: Number((f['leave'] as Frame | undefined)?.['maxChars'] ?? 2000),
        };
        break;
      case 'typing':
        if (conv !== this.view.conv) break;
        this.view.agentTyping = true;
        clearTimeout(this.typingTimer);
        this.typingTimer = setTimeout(() => {
          this.view.agentTyping = false;
          this.changed();
        }, TYPING_SHOW_MS);
        break;
      case 'read':
        if (conv === this.view.conv) this.view.agentRead = Math.max(this.view.agentRead, Number(f['seq']));
        break;
      case 'closed':
        if (conv === this.view.conv) Object.assign(this.view, { closed: true, position: null });
        break;
      default:
        return;
    }
    this.changed();
  }

  private applyMsg(m: Frame): void {
    const seq = Number(m['seq']);
    if (seq <= this.last) return;
    if (seq > this.last + 1) {
      this.conn.send({ type: 'sync', conv: this.view.conv, since: this.last });
      return;
    }
    this.last = seq;
    if (m['skip'] === true) return;
    if (m['change'] !== undefined) {
      // A recall or edit changes the message it names; it is not shown as a message of its own.
      const target = Number(m['target']);
      const recall = m['change'] === 'recall';
      this.view.messages = this.view.messages.map((x) =>
        x.seq === target
          ? {
              ...x,
              body: recall ? '' : String(m['body']),
              recalled: recall || x.recalled === true,
              edited: !recall,
            }
          : x,
      );
      return;
    }
    if (m['role'] !== 'visitor') this.view.agentTyping = false;
    const shown: ShownMessage = {
      seq,
      cmid: String(m['cmid']),
      mine: m['role'] === 'visitor',
      body: String(m['body']),
      ts: Number(m['ts']),
      role: String(m['role']),
      ...(m['recalled'] === true ? { recalled: true } : {}),
      ...(m['edited'] === true ? { edited: true } : {}),
    };
    this.view.messages = [...this.view.messages.slice(1 - MAX_SHOWN), shown];
  }

  private persist(): void {
    this.store.save({ conv: this.view.conv, unsent: this.view.unsent });
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }
}

export { FrameError };
