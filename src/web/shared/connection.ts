/**
 * A browser WebSocket client of the Switchboard protocol (docs/PROTOCOL.md, "A minimal client"),
 * shared by the widget and the console: subprotocol `switchboard.v1.json`, reconnect with
 * exponential backoff and jitter, a fresh token after 4001 or repeated refusals, request
 * frames matched to their answers by `ref`. What to do after a (re)connect is the caller's:
 * `onWelcome` runs on every `welcome`, where the caller resumes with `convs` and `sync`.
 */

/** A server frame as decoded JSON; `type` says which (clients ignore what they do not know). */
export type Frame = { type: string; [k: string]: unknown };

export type ConnState = 'connecting' | 'open' | 'offline';

export interface ConnectionOptions {
  /** `ws(s)://host/ws/visitor` or `/ws/agent`, without the token. */
  url: string;
  /** Resolves a token; `fresh` asks for a new one (after 4001 or refusals). Rejects: retried later. */
  getToken(fresh: boolean): Promise<string>;
  onFrame(f: Frame): void;
  onWelcome(f: Frame): void;
  onState(s: ConnState): void;
}

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 15_000;
export const REQUEST_TIMEOUT_MS = 15_000;
/**
 * How long a socket may take from `new WebSocket` to `welcome` before it is given up and the next
 * attempt is made (with the backoff). A browser waits minutes for a handshake that is never answered,
 * and a socket that opens but never hears `welcome` waits forever: either way the user would look at
 * a "connecting" dot until a reload. The node answers within its presence join timeout (5 s).
 */
export const WELCOME_TIMEOUT_MS = 10_000;
/** Requests waiting for their answer at once; more are refused at once (bounded). */
export const MAX_PENDING_REQUESTS = 256;
const CLOSE_TOKEN_EXPIRED = 4001;

/**
 * The delay before reconnect attempt `n` (0-based), ms: uniform in the upper half of an exponential
 * cap ("equal jitter": never a burst of immediate retries after an outage, yet spread out).
 */
export function backoffMs(n: number, random: () => number = Math.random): number {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(n, 10));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/** The delay after the server said `retryAfterMs`: that plus up to a quarter, so a crowd told alike spreads. */
export function toldDelayMs(retryAfterMs: number, random: () => number = Math.random): number {
  return Math.round(retryAfterMs * (1 + random() / 4));
}

/** A short random id usable as `cmid`, `ref` or `conv` (identifier pattern). */
export function newId(prefix: string): string {
  const rnd = new Uint8Array(8);
  crypto.getRandomValues(rnd);
  const r = Array.from(rnd, (b) => b.toString(36).padStart(2, '0')).join('');
  return `${prefix}${Date.now().toString(36)}${r}`.slice(0, 64);
}

/** The claims of a JWT, read without verifying (the server verifies; the client only plans refreshes). */
export function tokenClaims(token: string): Record<string, unknown> {
  try {
    const part = token.split('.')[1] ?? '';
    const bytes = Uint8Array.from(atob(part.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch {
    return {};
  }
}

interface Waiting {
  resolve(f: Frame): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** A refused request frame: `code` is the protocol's error code. */
export class FrameError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

/** One logical connection that reconnects until `stop()`. */
export class Connection {
  private ws: WebSocket | undefined;
  private attempt = 0;
  /** `retryAfterMs` of the drain notice on the current socket, if it got one. */
  private drainRetryAfterMs: number | undefined;
  private failuresBeforeWelcome = 0;
  private needFreshToken = false;
  private stopped = false;
  private welcomed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private welcomeTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly waiting = new Map<string, Waiting>();

  constructor(private readonly opts: ConnectionOptions) {}

  /** Opens the socket (idempotent). */
  start(): void {
    this.stopped = false;
    if (!this.ws && !this.timer) void this.open();
  }

  /** Closes with 1000 and stops reconnecting. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.clearWelcomeTimer();
    this.ws?.close(1000);
    this.ws = undefined;
  }

  /** Whether a `welcome` arrived on the current socket. */
  get ready(): boolean {
    return this.welcomed;
  }

  /** Sends a frame if the socket is ready; false when it is not (the caller keeps it for later). */
  send(frame: Frame): boolean {
    if (!this.ws || !this.welcomed || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Sends a request frame with a new `ref`; resolves with the answer carrying that ref (`done`,
   * `convs`, `revealed`, `context`, `action_result`…), rejects with FrameError on an `error` frame,
   * or Error when offline, on timeout, or when too many requests are waiting.
   */
  request(frame: Frame, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Frame> {
    if (this.waiting.size >= MAX_PENDING_REQUESTS) return Promise.reject(new Error('too many requests'));
    const ref = newId('r');
    if (!this.send({ ...frame, ref })) return Promise.reject(new Error('offline'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ref);
        reject(new Error('timeout'));
      }, timeoutMs);
      this.waiting.set(ref, { resolve, reject, timer });
    });
  }

  private async open(): Promise<void> {
    this.opts.onState('connecting');
    let token: string;
    try {
      token = await this.opts.getToken(this.needFreshToken || this.failuresBeforeWelcome >= 2);
      this.needFreshToken = false;
    } catch {
      this.retry();
      return;
    }
    if (this.stopped) return;
    const ws = new WebSocket(`${this.opts.url}?token=${encodeURIComponent(token)}`, 'switchboard.v1.json');
    this.ws = ws;
    this.welcomed = false;
    this.clearWelcomeTimer();
    this.welcomeTimer = setTimeout(() => {
      this.welcomeTimer = undefined;
      if (this.ws !== ws || this.welcomed) return;
      console.warn(`switchboard: no welcome within ${WELCOME_TIMEOUT_MS} ms; reconnecting`);
      this.lost(ws, 0);
      ws.close();
    }, WELCOME_TIMEOUT_MS);
    ws.onmessage = (ev) => {
      // A socket given up (no welcome in time) may still deliver: it is not the current one any more.
      if (this.ws !== ws) return;
      let f: Frame;
      try {
        f = JSON.parse(String(ev.data)) as Frame;
      } catch {
        return;
      }
      if (f.type === 'welcome') {
        this.clearWelcomeTimer();
        this.welcomed = true;
        this.attempt = 0;
        this.failuresBeforeWelcome = 0;
        this.opts.onState('open');
        this.opts.onWelcome(f);
        return;
      }
      const ref = typeof f['ref'] === 'string' ? f['ref'] : undefined;
      if (f.type === 'error' && ref === undefined && f['code'] === 'unavailable') {
        // A draining node's notice before its 1012: when to come back (PROTOCOL.md, step 7).
        const ms = f['retryAfterMs'];
        if (typeof ms === 'number' && ms >= 0) this.drainRetryAfterMs = ms;
        return;
      }
      const w = ref !== undefined ? this.waiting.get(ref) : undefined;
      if (w && ref !== undefined) {
        this.waiting.delete(ref);
        clearTimeout(w.timer);
        if (f.type === 'error') w.reject(new FrameError(String(f['code']), String(f['message'])));
        else w.resolve(f);
        return;
      }
      this.opts.onFrame(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.lost(ws, ev.code);
    };
  }

  /** The current socket `ws` is gone (closed with `code`, or given up): fail its requests, retry. */
  private lost(ws: WebSocket, code: number): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    this.clearWelcomeTimer();
    if (!this.welcomed) this.failuresBeforeWelcome++;
    if (code === CLOSE_TOKEN_EXPIRED) this.needFreshToken = true;
    this.welcomed = false;
    for (const [ref, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new Error('disconnected'));
      this.waiting.delete(ref);
    }
    this.opts.onState('offline');
    this.retry();
  }

  private clearWelcomeTimer(): void {
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = undefined;
  }

  private retry(): void {
    if (this.stopped) return;
    // The node said when to come back (its drain notice): that, jittered, without raising the backoff.
    const told = this.drainRetryAfterMs;
    this.drainRetryAfterMs = undefined;
    const delay = told === undefined ? backoffMs(this.attempt++) : toldDelayMs(told);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.open();
    }, delay);
  }
}
