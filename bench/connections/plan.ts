/**
 * Sizing of the connections scenario, checked before anything starts: how many broker workers (each under
 * the per-process fd limit), how many generator processes (each under the fd limit and under the ~28k
 * ephemeral ports one source address has towards one destination port), and which loopback address
 * each generator binds its sockets to.
 *
 * Each run binds a /24 of 127/8 of its own (`sourceNet`). A socket bound to an explicit source address
 * gets its port through bind() with SO_REUSEADDR (libuv sets it), which hands out ports still in
 * TIME_WAIT from the previous run towards the same node port: the kernel then crawls through them,
 * the generator's loop stalls, and sockets whose upgrade request is written more than 10 s after
 * the TCP connect are reset by uWebSockets.js (its HTTP idle timeout) — "closed 1006 before
 * welcome" that says nothing about the broker.
 *
 * A generator's reconnects also turn through more addresses of that /24 (`sourceAddresses`). A node's
 * workers share its port with SO_REUSEPORT, and the kernel picks the worker by a hash of the
 * connection's addresses and ports: a client with a few fixed source ports can reach only the workers
 * those few hash to. After a kill -9 at 100k, 2 190 clients whose three source ports all hashed to
 * workers at their socket limit were refused for 120 s while the restarted worker had room. A real
 * client's ephemeral port differs on every attempt, so every attempt is hashed afresh.
 */
import { readFileSync } from 'node:fs';

/**
 * Connections per broker worker by default, under the 20k fd limit of this machine's processes (a worker
 * refuses sockets past its limit − 1000 with a 503). 17 000 puts 100k on 6 workers, not 7: each worker
 * costs ~45 MiB of its own memory idle (issue #14, the node's memory at 100k). When one of 6 is killed, the
 * survivors fill to their limit and refuse the rest until it is back (seconds), which the kill storm measures.
 */
export const DEFAULT_CONNECTIONS_PER_WORKER = 17_000;
export const DEFAULT_SOCKETS_PER_GENERATOR = 16_000;
/** fds a process needs besides its sockets (stdio, IPC, NATS, Cassandra, libuv, files). */
const FD_HEADROOM = 500;
const FALLBACK_FD_LIMIT = 1024;
const FALLBACK_EPHEMERAL_PORTS = 28_232;
const MAX_LOOPBACK_HOST = 254;
const SOURCE_NET_PATTERN = /^127\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)$/;

/** A /24 of 127/8 for this run's source addresses, away from 127.0.0.x (where servers listen). */
export function freshSourceNet(random: () => number = Math.random): string {
  return `127.${1 + Math.floor(random() * 254)}.${Math.floor(random() * 256)}`;
}

export interface ConnectionsPlan {
  target: number;
  workers: number;
  generators: number;
  /** Sockets of generator g: [ranges[g].from, ranges[g].to). */
  ranges: { from: number; to: number; localAddress: string; sourceAddresses: string[] }[];
  fdLimit: number;
  ephemeralPorts: number;
}

/** The soft "Max open files" of this process (children inherit it). */
export function fdLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const n = Number(line?.trim().split(/\s+/)[3]);
    return Number.isInteger(n) && n > 0 ? n : FALLBACK_FD_LIMIT;
  } catch {
    return FALLBACK_FD_LIMIT;
  }
}

export function ephemeralPorts(): number {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    return lo !== undefined && hi !== undefined && hi >= lo ? hi - lo + 1 : FALLBACK_EPHEMERAL_PORTS;
  } catch {
    return FALLBACK_EPHEMERAL_PORTS;
  }
}

export function planConnections(o: {
  target: number;
  workers?: number;
  perGenerator: number;
  sourceBase: number;
  /** `127.a.b`: generator g binds `127.a.b.(sourceBase + g)`; default a fresh one per run. */
  sourceNet?: string;
}): ConnectionsPlan {
  const net = o.sourceNet ?? freshSourceNet();
  if (!SOURCE_NET_PATTERN.test(net)) throw new Error(`source net '${net}' is not of the form 127.a.b`);
  const fds = fdLimit();
  const ports = ephemeralPorts();
  const perProcess = fds - FD_HEADROOM;
  const workers = o.workers ?? Math.ceil(o.target / DEFAULT_CONNECTIONS_PER_WORKER);
  if (Math.ceil(o.target / workers) > perProcess) {
    throw new Error(
      `${o.target} connections over ${workers} workers is ${Math.ceil(o.target / workers)} per worker, above the fd limit (${fds} - ${FD_HEADROOM}); use more --workers`,
    );
  }
  const perGenerator = Math.min(o.perGenerator, perProcess, ports);
  const generators = Math.ceil(o.target / perGenerator);
  if (o.sourceBase + generators - 1 > MAX_LOOPBACK_HOST) {
    throw new Error(
      `${generators} generators do not fit in ${net}.${o.sourceBase}-${MAX_LOOPBACK_HOST}; lower --source-base`,
    );
  }
  const ranges = Array.from({ length: generators }, (_, g) => {
    // Generator g's addresses: sourceBase + g, then every `generators` hosts up to 254.
    const hosts: number[] = [];
    for (let h = o.sourceBase + g; h <= MAX_LOOPBACK_HOST; h += generators) hosts.push(h);
    return {
      from: Math.floor((o.target * g) / generators),
      to: Math.floor((o.target * (g + 1)) / generators),
      localAddress: `${net}.${hosts[0]}`,
      sourceAddresses: hosts.map((h) => `${net}.${h}`),
    };
  });
  return { target: o.target, workers, generators, ranges, fdLimit: fds, ephemeralPorts: ports };
}
