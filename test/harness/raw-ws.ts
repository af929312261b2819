/**
 * A WebSocket client on a bare TCP socket, for tests that need what a library hides: stop reading
 * (a slow consumer), never answer pings (idle timeout), send arbitrary bytes (fuzzing). It does the
 * upgrade handshake, masks what it sends (RFC 6455 §5.3), and parses the server's frames.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface RawFrame {
  opcode: number;
  fin: boolean;
  payload: Buffer;
}

export interface RawWs {
  readonly socket: Socket;
  /** Frames parsed so far (all of them, in order). */
  readonly frames: RawFrame[];
  /** Resolves when the TCP connection has ended (FIN or reset), with what was parsed by then. */
  readonly ended: Promise<void>;
  /** Sends one frame (masked), default a final text frame. */
  send(payload: Buffer | string, opcode?: number, fin?: boolean): void;
  /** Writes raw bytes on the socket (after the handshake). */
  writeRaw(bytes: Buffer): void;
  /** Stops reading from the kernel (the server's send buffer fills up). */
  pause(): void;
  resume(): void;
  /** The close frame's code, if one arrived. */
  closeCode(): number | undefined;
  /** Waits until a frame matching `match` was parsed (or rejects after `timeoutMs` / the end). */
  waitFor(match: (f: RawFrame) => boolean, timeoutMs?: number): Promise<RawFrame>;
  destroy(): void;
}

/** Opens `path?token=` on the broker and completes the upgrade; rejects on a non-101 answer. */
export function rawConnect(port: number, path: string, token: string, subprotocol: string): Promise<RawWs> {
  const socket = connect(port, '127.0.0.1');
  const frames: RawFrame[] = [];
  let buf = Buffer.alloc(0);
  let upgraded = false;
  const listeners = new Set<() => void>();
  const ended = new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
  });
  socket.on('error', () => {});

  function parse(): void {
    for (;;) {
      if (buf.length < 2) return;
      const b0 = buf[0]!;
      const b1 = buf[1]!;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      if (b1 & 0x80) off += 4; // servers never mask, but be exact
      if (buf.length < off + len) return;
      frames.push({
        opcode: b0 & 0x0f,
        fin: (b0 & 0x80) !== 0,
        payload: Buffer.from(buf.subarray(off, off + len)),
      });
      buf = buf.subarray(off + len);
      for (const l of listeners) l();
    }
  }

  function send(payload: Buffer | string, opcode = 1, fin = true): void {
    const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    const mask = randomBytes(4);
    let header: Buffer;
    if (data.length < 126) {
      header = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | data.length]);
    } else if (data.length < 65536) {
      header = Buffer.alloc(4);
      header[0] = (fin ? 0x80 : 0) | opcode;
      header[1] = 0x80 | 126;
      header.writeUInt16BE(data.length, 2);
    } else {
      header = Buffer.alloc(10);
      header[0] = (fin ? 0x80 : 0) | opcode;
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(data.length), 2);
    }
    const masked = Buffer.alloc(data.length);
    for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ mask[i & 3]!;
    socket.write(Buffer.concat([header, mask, masked]));
  }

  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      const key = randomBytes(16).toString('base64');
      socket.write(
        `GET ${path}?token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Protocol: ${subprotocol}\r\n\r\n`,
      );
    });
    socket.once('close', () => {
      if (!upgraded) reject(new Error(`closed before the upgrade: ${buf.toString('latin1').slice(0, 200)}`));
    });
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        if (!head.startsWith('HTTP/1.1 101')) {
          reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
          socket.destroy();
          return;
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve(ws);
      }
      parse();
    });
    const ws: RawWs = {
      socket,
      frames,
      ended,
      send,
      writeRaw: (bytes) => socket.write(bytes),
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      closeCode: () => {
        const c = frames.find((f) => f.opcode === 8);
        return c && c.payload.length >= 2 ? c.payload.readUInt16BE(0) : undefined;
      },
      waitFor(match, timeoutMs = 10_000) {
        const found = frames.find(match);
        if (found) return Promise.resolve(found);
        return new Promise((res, rej) => {
          const check = () => {
            const f = frames.find(match);
            if (f) {
              done();
              res(f);
            }
          };
          const timer = setTimeout(() => {
            done();
            rej(new Error(`no matching frame within ${timeoutMs} ms`));
          }, timeoutMs);
          const done = () => {
            clearTimeout(timer);
            listeners.delete(check);
          };
          listeners.add(check);
          ended.then(() => {
            if (listeners.has(check)) {
              done();
              rej(new Error('connection ended before a matching frame'));
            }
          });
        });
      },
      destroy: () => socket.destroy(),
    };
  });
}
