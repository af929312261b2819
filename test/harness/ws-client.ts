/**
 * A test client speaking the Switchboard protocol from docs/PROTOCOL.md, over the `ws` package,
 * on either subprotocol. Frames are buffered so a test can wait for the next frame that matches.
 */
import { decode, encode } from '@msgpack/msgpack';
import WebSocket, { type ClientOptions } from 'ws';

export type Sub = 'switchboard.v1.msgpack' | 'switchboard.v1.json';
export type Frame = Record<string, unknown> & { type: string };

export interface TestClient {
  readonly ws: WebSocket;
  readonly welcome: Frame;
  send(frame: Record<string, unknown>): void;
  sendRaw(data: Buffer | string, binary: boolean): void;
  /** The next buffered or arriving frame for which `match` is true (others stay buffered). */
  next(match: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Frames received so far and not yet taken by next(). */
  buffered(): Frame[];
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

export interface UpgradeRefused {
  status: number;
  body: string;
}

/**
 * Opens a socket and waits for `welcome`; rejects with an UpgradeRefused when the server answers the
 * upgrade with HTTP, and with an Error when the socket closes before `welcome`.
 */
export function connectClient(
  url: string,
  token: string | undefined,
  sub: Sub | string[],
  options?: ClientOptions,
): Promise<TestClient> {
  const full = token === undefined ? url : `${url}?token=${encodeURIComponent(token)}`;
  const ws = new WebSocket(full, Array.isArray(sub) ? sub : [sub], options);
  const binary = ws.protocol === 'switchboard.v1.msgpack' || sub === 'switchboard.v1.msgpack';
  const frames: Frame[] = [];
  const waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  let first: string | undefined;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const f = (isBinary ? decode(data) : JSON.parse(data.toString())) as Frame;
    first ??= f.type;
    const i = waiters.findIndex((w) => w.match(f));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(f);
    else frames.push(f);
  });
  const next = (match: (f: Frame) => boolean, timeoutMs = 10_000) => {
    const i = frames.findIndex(match);
    if (i >= 0) return Promise.resolve(frames.splice(i, 1)[0]!);
    return new Promise<Frame>((resolve, reject) => {
      const w = {
        match,
        resolve: (f: Frame) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`no matching frame within ${timeoutMs} ms; buffered: ${JSON.stringify(frames)}`));
      }, timeoutMs);
      waiters.push(w);
    });
  };
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => reject({ status: res.statusCode ?? 0, body } satisfies UpgradeRefused));
    });
    let lastError: Error | undefined;
    ws.on('error', (err) => {
      lastError = err;
    });
    ws.once('error', reject);
    ws.once('open', async () => {
      try {
        // A socket closed before `welcome` fails at once, with its close code, instead of timing out.
        const welcome = await Promise.race([
          next((f) => f.type === 'welcome'),
          closed.then((c) =>
            Promise.reject(
              new Error(`closed ${c.code} before welcome${lastError ? ` (${lastError.message})` : ''}`),
            ),
          ),
        ]);
        // docs/PROTOCOL.md: `welcome` is always a socket's first frame (every test socket checks it).
        if (first !== 'welcome') throw new Error(`the first frame was '${first}', not 'welcome'`);
        resolve({
          ws,
          welcome,
          send: (frame) => (binary ? ws.send(encode(frame)) : ws.send(JSON.stringify(frame))),
          sendRaw: (data, isBinary) => ws.send(data, { binary: isBinary }),
          next,
          buffered: () => [...frames],
          closed,
          close: async () => {
            if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
            await closed;
          },
        });
      } catch (err) {
        reject(err);
      }
    });
  });
}

/**
 * What docs/PROTOCOL.md asks of a receiving client, per conversation: apply `msg`s in seq order,
 * ignore duplicates (seq <= last), and detect gaps (seq > last + 1), which it reports so the test
 * can fill them with `sync`. `applied` is the seqs applied, in order.
 */
export class SeqTracker {
  last = 0;
  readonly applied: number[] = [];
  duplicates = 0;
  gaps: Array<{ after: number; got: number }> = [];
  /** Messages that arrived above a gap, applied once the gap is filled. */
  private readonly held = new Map<number, Frame>();

  /** Offers one message; returns false when it revealed a gap (sync since `last`). */
  offer(m: Frame): boolean {
    const s = Number(m['seq']);
    if (s <= this.last || this.held.has(s)) {
      this.duplicates++;
      return true;
    }
    if (s > this.last + 1) {
      this.held.set(s, m);
      this.gaps.push({ after: this.last, got: s });
      return false;
    }
    this.apply(s);
    return true;
  }

  private apply(s: number): void {
    this.applied.push(s);
    this.last = s;
    for (let next = this.last + 1; this.held.has(next); next++) {
      this.held.delete(next);
      this.applied.push(next);
      this.last = next;
    }
  }
}

/** Sends `sync` from `tracker.last` until `more` is false, offering every item. */
export async function syncInto(c: TestClient, conv: string, tracker: SeqTracker): Promise<void> {
  for (;;) {
    c.send({ type: 'sync', conv, since: tracker.last, limit: 100 });
    const page = await c.next((f) => (f.type === 'messages' && f.conv === conv) || f.type === 'error');
    if (page.type === 'error') throw new Error(`sync refused: ${page.code}`);
    for (const m of page['items'] as Frame[]) tracker.offer(m);
    if (page['more'] !== true) return;
  }
}
