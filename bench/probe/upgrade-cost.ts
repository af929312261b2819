/**
 * What a WebSocket upgrade costs the server and the client, by how the server calls `res.upgrade`
 * (twenty-ninth session, BENCHMARKS.md). Run: `node dist/bench/probe/upgrade-cost.js [count]`.
 *
 * - `sync`: inside uWS's upgrade handler (uWS has corked the response);
 * - `microtask`: in a promise continuation of the handler, which Node runs before uWS returns (still corked);
 * - `async`: on a later turn, as after a token check on the thread pool (WebCrypto), uncorked: uWS then
 *   writes the 101's status line and each header with a syscall of its own;
 * - `async-corked`: the same inside `res.cork()`, which the gateway cannot use: uWS's cork() misreads a
 *   socket upgraded in place and may close it right after `open` (uNetworking/uWebSockets#1928, fixed by
 *   #1929, not in uws-pack 20.0.8, the newest on npm).
 *
 * The server is a child process with one uWS app; the client opens `count` sockets, 64 at a time, and
 * waits for a first frame on each. Prints CPU µs per socket of each side, and how many sockets closed
 * before their first frame.
 */

import * as uWS from 'uWebSockets.js';
import { fork } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

const MODES = ['sync', 'microtask', 'async', 'async-corked'] as const;
type Mode = (typeof MODES)[number];
const IN_FLIGHT = 64;
const WARMUP = 500;
const MAX_SOCKETS = 15_000;
const REQUEST =
  'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

function serve(mode: Mode): void {
  let opened = 0;
  const app = uWS.App().ws('/*', {
    upgrade: (res, req, context) => {
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const go = (): void => {
        res.upgrade({}, key, protocol, extensions, context);
      };
      if (mode === 'sync') return go();
      res.onAborted(() => {});
      if (mode === 'microtask') void Promise.resolve().then(go);
      else if (mode === 'async') setImmediate(go);
      else setImmediate(() => res.cork(go));
    },
    open: (ws) => {
      opened++;
      ws.send('hello');
    },
  });
  app.listen('127.0.0.1', 0, (token) => {
    if (!token) process.exit(1);
    process.on('message', () => {
      const c = process.cpuUsage();
      process.send?.({ opened, cpuUs: c.user + c.system });
    });
    process.send?.({ port: uWS.us_socket_local_port(token) });
  });
}

async function measure(
  mode: Mode,
  count: number,
): Promise<{ server: number; client: number; closedEarly: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', mode], {
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  });
  const next = <T>(): Promise<T> => new Promise((resolve) => child.once('message', (m) => resolve(m as T)));
  const { port } = await next<{ port: number }>();
  const sockets: Socket[] = [];
  let cut = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write(REQUEST));
      let head = '';
      let done = false;
      s.on('data', (d: Buffer) => {
        head += d.toString('latin1');
        if (!done && head.includes('hello')) {
          done = true;
          resolve();
        }
      });
      // A socket closed before its first frame (the cork bug above) is counted and ends its attempt.
      s.on('close', () => {
        if (done) return;
        done = true;
        cut++;
        resolve();
      });
      s.on('error', () => {});
      sockets.push(s);
    });
  const open = async (n: number): Promise<void> => {
    let started = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (started < n) {
          started++;
          await one();
        }
      }),
    );
  };
  const usage = (): Promise<{ opened: number; cpuUs: number }> => {
    const m = next<{ opened: number; cpuUs: number }>();
    child.send('cpu');
    return m;
  };
  await open(WARMUP);
  const before = await usage();
  const clientBefore = process.cpuUsage();
  await open(count);
  const clientCpu = process.cpuUsage(clientBefore);
  const after = await usage();
  const closedEarly = cut;
  for (const s of sockets) s.destroy();
  child.kill();
  const opened = after.opened - before.opened;
  return {
    server: (after.cpuUs - before.cpuUs) / opened,
    client: (clientCpu.user + clientCpu.system) / count,
    closedEarly,
  };
}

if (process.argv[2] === '--serve') serve(process.argv[3] as Mode);
else {
  const count = Number(process.argv[2] ?? 6000);
  // The client holds every socket it opened (and the warm-up's) until the mode ends: stay under the 20k
  // descriptors a process may hold here, or the excess closes before a frame for want of a descriptor.
  if (!Number.isInteger(count) || count < 1 || count + WARMUP > MAX_SOCKETS)
    throw new Error(`count must be an integer from 1 to ${MAX_SOCKETS - WARMUP}`);
  for (const mode of MODES) {
    const r = await measure(mode, count);
    console.log(
      `${mode.padEnd(13)} server ${r.server.toFixed(1)} µs per socket, client ${r.client.toFixed(1)} µs, ` +
        `closed before a frame ${r.closedEarly}`,
    );
  }
}
