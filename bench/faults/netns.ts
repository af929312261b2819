/**
 * The fault checker's network: one Linux network namespace per broker, as if each were its own host,
 * joined by veth pairs to a bridge in the root namespace. Every address comes from 198.18.0.0/15 (the
 * range set aside for benchmark networks, RFC 2544): the bridge is the gateway, NATS and Cassandra listen
 * on addresses of their own on the bridge (so a broker can be cut from NATS alone), and broker i has
 * 198.18.0.(10 + i). A partition is two nftables rules inside the victim's namespace that drop everything
 * to and from the NATS address, so the victim still reaches Cassandra and its clients still reach it.
 *
 * Everything is named with FAULTS_PREFIX, created only by this module, and removed by `teardown()` —
 * also the leftovers of a run that crashed (found by name). Needs root (`ip`, `nft`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pidsHolding, tcpRows } from '../lib/proc.js';

/** Names of every namespace, link and nftables table this module creates start with this. */
export const FAULTS_PREFIX = 'sbf';
const BRIDGE = `${FAULTS_PREFIX}br0`;
const SUBNET_BITS = 24;
export const BRIDGE_ADDRESS = '198.18.0.1';
export const NATS_ADDRESS = '198.18.0.2';
export const CASSANDRA_ADDRESS = '198.18.0.3';
const BROKER_ADDRESS_BASE = 10;
const NFT_TABLE = `${FAULTS_PREFIX}cut`;
/** One fault run per machine: the addresses and names are fixed. */
const LOCK_FILE = '/run/sbf-faults.lock';
const ALLOWED = /^198\.(18|19)\.\d{1,3}\.\d{1,3}$/;

export interface Host {
  /** Namespace name, e.g. `sbf-b1`. */
  readonly ns: string;
  readonly address: string;
}

function run(cmd: string, args: readonly string[], input?: string): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    ...(input === undefined ? {} : { input }),
  });
}

function tryRun(cmd: string, args: readonly string[]): boolean {
  try {
    run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

function assertBenchAddress(address: string): void {
  if (!ALLOWED.test(address)) throw new Error(`refusing address ${address}: only 198.18.0.0/15 is used`);
}

function hasCommand(name: string): boolean {
  return tryRun('sh', ['-c', `command -v ${name}`]);
}

/**
 * Checks what the network needs: root, `ip`, network namespaces, and `nft` — installing the Debian
 * package nftables when it is missing and apt-get is there (as deploy/setup.sh does for nats-server).
 * Throws a message naming what is missing.
 */
export function ensureNetworkTools(say: (line: string) => void): void {
  if (process.getuid?.() !== 0)
    throw new Error('the fault checker needs root (network namespaces, nftables)');
  if (!hasCommand('ip')) throw new Error('`ip` (iproute2) is missing: apt-get install -y iproute2');
  if (!hasCommand('nft')) {
    if (!hasCommand('apt-get')) throw new Error('`nft` is missing: install nftables');
    say('installing the Debian package nftables (partitions are nftables rules)');
    try {
      run('sh', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null']);
    } catch {
      run('sh', [
        '-c',
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables',
      ]);
    }
    if (!hasCommand('nft')) throw new Error('apt-get install nftables finished but `nft` is still missing');
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Takes the machine-wide lock of fault runs; throws when another live run holds it. */
function lock(): void {
  if (existsSync(LOCK_FILE)) {
    const pid = Number(readFileSync(LOCK_FILE, 'utf8').trim());
    if (Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) {
      throw new Error(`another fault run (pid ${pid}) is using the ${FAULTS_PREFIX} network; wait for it`);
    }
  }
  writeFileSync(LOCK_FILE, `${process.pid}\n`);
}

function unlock(): void {
  try {
    if (Number(readFileSync(LOCK_FILE, 'utf8').trim()) === process.pid) rmSync(LOCK_FILE);
  } catch {
    // Nothing to release.
  }
}

/** Names of namespaces with our prefix (leftovers of a crashed run included). */
function ourNamespaces(): string[] {
  return run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(`${FAULTS_PREFIX}-`));
}

function ourLinks(): string[] {
  return run('ip', ['-o', 'link', 'show'])
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n.startsWith(FAULTS_PREFIX));
}

/** Hex of an IPv4 address as /proc/net/tcp writes it (little-endian on x86 and arm). */
function procNetHex(address: string): string {
  return address
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0').toUpperCase())
    .reverse()
    .join('');
}

/** Socket inodes listening on one of `addresses` in the root namespace. */
function listeningInodes(addresses: readonly string[]): Set<string> {
  const hex = new Set(addresses.map(procNetHex));
  const out = new Set<string>();
  for (const cols of tcpRows(['/proc/net/tcp'])) {
    if (cols[3] === '0A' && hex.has((cols[1] ?? '').split(':')[0] ?? '') && cols[9]) out.add(cols[9]);
  }
  return out;
}

/**
 * Processes of an earlier fault run that crashed: every process in one of our namespaces, and the
 * nats-servers and Cassandra listening on our addresses (nothing else may use them). SIGKILLs them;
 * returns their pids.
 */
function killLeftovers(): number[] {
  const pids = new Set<number>();
  for (const ns of ourNamespaces()) {
    for (const p of run('ip', ['netns', 'pids', ns]).split('\n'))
      if (/^\d+$/.test(p.trim())) pids.add(Number(p));
  }
  for (const pid of pidsHolding(listeningInodes([NATS_ADDRESS, CASSANDRA_ADDRESS]))) pids.add(pid);
  pids.delete(process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  return [...pids];
}

/**
 * Removes every namespace and link with our prefix (their veth ends and addresses go with them).
 * Never touches anything else. Safe to call at any time, also when nothing exists.
 */
export function removeNetwork(): void {
  for (const ns of ourNamespaces()) tryRun('ip', ['netns', 'delete', ns]);
  for (const link of ourLinks()) tryRun('ip', ['link', 'delete', link]);
}

export interface Network {
  readonly brokers: readonly Host[];
  /** Drops all traffic between the broker's namespace and the NATS address, both ways. */
  cutFromNats(host: Host): void;
  heal(host: Host): void;
  /** Whether a cut is in place (read back from nftables). */
  isCut(host: Host): boolean;
  teardown(): void;
}

/**
 * Builds the bridge and one namespace per broker, after removing leftovers of an earlier run. Throws (with
 * everything removed again) when a step fails.
 */
export function createNetwork(brokers: number, say: (line: string) => void): Network {
  lock();
  const stale = killLeftovers();
  if (stale.length > 0)
    say(`killed ${stale.length} process(es) left by an earlier fault run: ${stale.join(' ')}`);
  removeNetwork();
  const hosts: Host[] = Array.from({ length: brokers }, (_, i) => ({
    ns: `${FAULTS_PREFIX}-b${i + 1}`,
    address: `198.18.0.${BROKER_ADDRESS_BASE + i + 1}`,
  }));
  try {
    for (const a of [BRIDGE_ADDRESS, NATS_ADDRESS, CASSANDRA_ADDRESS, ...hosts.map((h) => h.address)])
      assertBenchAddress(a);
    run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    for (const a of [BRIDGE_ADDRESS, NATS_ADDRESS, CASSANDRA_ADDRESS])
      run('ip', ['addr', 'add', `${a}/${SUBNET_BITS}`, 'dev', BRIDGE]);
    run('ip', ['link', 'set', BRIDGE, 'up']);
    for (const [i, h] of hosts.entries()) {
      const outer = `${FAULTS_PREFIX}v${i + 1}`;
      const inner = `${FAULTS_PREFIX}p${i + 1}`;
      run('ip', ['netns', 'add', h.ns]);
      run('ip', ['link', 'add', outer, 'type', 'veth', 'peer', 'name', inner]);
      run('ip', ['link', 'set', inner, 'netns', h.ns]);
      run('ip', ['link', 'set', outer, 'master', BRIDGE]);
      run('ip', ['link', 'set', outer, 'up']);
      const inNs = (args: string[]): string => run('ip', ['netns', 'exec', h.ns, 'ip', ...args]);
      inNs(['link', 'set', 'lo', 'up']);
      inNs(['addr', 'add', `${h.address}/${SUBNET_BITS}`, 'dev', inner]);
      inNs(['link', 'set', inner, 'up']);
    }
    say(
      `network: bridge ${BRIDGE} ${BRIDGE_ADDRESS}, NATS ${NATS_ADDRESS}, Cassandra ${CASSANDRA_ADDRESS}, ` +
        hosts.map((h) => `${h.ns} ${h.address}`).join(', '),
    );
  } catch (err) {
    removeNetwork();
    unlock();
    throw err;
  }

  const nft = (h: Host, script: string): void => {
    run('ip', ['netns', 'exec', h.ns, 'nft', '-f', '-'], script);
  };
  return {
    brokers: hosts,
    cutFromNats(h) {
      // Silent drops, as a real partition: established NATS connections stall rather than reset.
      nft(
        h,
        [
          `table inet ${NFT_TABLE} {`,
          '  chain out {',
          '    type filter hook output priority 0; policy accept;',
          `    ip daddr ${NATS_ADDRESS} drop`,
          '  }',
          '  chain in {',
          '    type filter hook input priority 0; policy accept;',
          `    ip saddr ${NATS_ADDRESS} drop`,
          '  }',
          '}',
          '',
        ].join('\n'),
      );
    },
    heal(h) {
      tryRun('ip', ['netns', 'exec', h.ns, 'nft', 'delete', 'table', 'inet', NFT_TABLE]);
    },
    isCut(h) {
      return tryRun('ip', ['netns', 'exec', h.ns, 'nft', 'list', 'table', 'inet', NFT_TABLE]);
    },
    teardown() {
      removeNetwork();
      unlock();
    },
  };
}

/** The command and arguments that run `command` inside a host's namespace (exec'd: the pid is the command's). */
export function inNamespace(h: Host, command: string, args: readonly string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', h.ns, command, ...args]];
}
