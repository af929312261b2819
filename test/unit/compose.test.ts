/**
 * deploy/compose.yaml without a container engine: it is parsed and checked against what the pieces
 * really accept — the broker command against the CLI's own options, every broker variable against the
 * config parser (the same parseConfig the node runs), the nats-server flags against the installed
 * nats-server's --help, and the ports and host names between the services.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { configFromEnv, parseConfig } from '../../src/config.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = `${ROOT}dist/src/cli.js`;

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  volumes?: string[];
  stop_grace_period?: string;
}
const compose = parse(readFileSync(`${ROOT}deploy/compose.yaml`, 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;
const brokers = Object.entries(services).filter(([, s]) => s.command?.[0] === 'serve');
const natsServers = Object.entries(services).filter(([, s]) => s.image?.startsWith('nats:'));

/** Compose's `${VAR:-default}` as compose would expand it with VAR unset. */
const expand = (v: string) => v.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');

/** Every --long option a command's --help lists. */
function helpOptions(cmd: string, args: string[]): Set<string> {
  const help = execFileSync(cmd, args, { encoding: 'utf8' });
  return new Set([...help.matchAll(/(?:^|[\s,])(--[a-z_][a-z0-9_-]*)/gm)].map((m) => m[1]!));
}

test('compose - 3 nats-servers with JetStream, clustered with routes to each other', () => {
  assert.equal(natsServers.length, 3);
  const natsBin = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
  const known = helpOptions(natsBin, ['--help']);
  const names = natsServers.map(([n]) => n);
  for (const [name, s] of natsServers) {
    const cmd = s.command ?? [];
    for (const flag of cmd.filter((a) => a.startsWith('--')))
      assert.ok(known.has(flag), `${name}: nats-server knows ${flag}`);
    const arg = (flag: string) => cmd[cmd.indexOf(flag) + 1];
    assert.ok(cmd.includes('--jetstream'), `${name} runs JetStream`);
    assert.equal(arg('--name'), name, 'server names are unique (JetStream needs it)');
    assert.equal(arg('--cluster_name'), 'switchboard');
    assert.equal(arg('--cluster'), 'nats://0.0.0.0:6222');
    const routes = (arg('--routes') ?? '').split(',');
    const others = names.filter((n) => n !== name).map((n) => `nats://${n}:6222`);
    assert.deepEqual(routes.sort(), others.sort(), `${name} routes to the two others`);
    assert.ok(
      s.volumes?.some((v) => v.endsWith(`:${arg('--store_dir')}`)),
      `${name} keeps its store`,
    );
  }
});

test('compose - two brokers, the CLI accepts their command and the config parser their environment', () => {
  assert.ok(brokers.length >= 2, 'at least two broker nodes');
  const serveOptions = helpOptions(process.execPath, [CLI, 'serve', '--help']);
  const ids = new Set<string>();
  const hostPorts = new Set<string>();
  for (const [name, s] of brokers) {
    assert.ok(
      s.build && existsSync(`${ROOT}deploy/${s.build.context}/${s.build.dockerfile}`),
      `${name} builds`,
    );
    for (const flag of (s.command ?? []).filter((a) => a.startsWith('--')))
      assert.ok(serveOptions.has(flag), `${name}: 'switchboard serve' has ${flag}`);
    const env = Object.fromEntries(
      Object.entries(s.environment ?? {}).map(([k, v]) => [k, expand(String(v))]),
    );
    // The image sets NODE_ENV=production: the parser then insists on a real token secret.
    const cfg = parseConfig(configFromEnv({ ...env, NODE_ENV: 'production' }));
    assert.equal(cfg.http.host, '0.0.0.0', `${name} listens on every interface`);
    assert.equal(cfg.auth.devSecret, false);
    ids.add(cfg.nodeId);
    assert.equal(cfg.cluster, 'compose');
    // Every SB_*/OTEL_* variable is one the config module reads (a typo would be silently ignored).
    const source = readFileSync(`${ROOT}src/config.ts`, 'utf8');
    for (const key of Object.keys(env))
      assert.ok(source.includes(`'${key}'`), `${name}: ${key} is read by src/config.ts`);
    // NATS URLs are the three servers' client port; Cassandra is the service, its data center.
    const natsHosts = cfg.nats.servers.map((u) => new URL(u)).map((u) => `${u.hostname}:${u.port}`);
    assert.deepEqual(natsHosts.sort(), natsServers.map(([n]) => `${n}:4222`).sort());
    assert.equal(cfg.nats.replicas, natsServers.length, 'buckets and streams on every nats-server');
    const [cassHost, cassPort] = cfg.cassandra.contactPoints[0]!.split(':');
    assert.ok(
      services[cassHost!]?.image?.startsWith('cassandra:5'),
      'SB_CASSANDRA names the Cassandra 5 service',
    );
    assert.equal(cassPort, '9042');
    assert.equal(cfg.cassandra.localDataCenter, services[cassHost!]!.environment?.['CASSANDRA_DC']);
    assert.match(cfg.cassandra.replication, new RegExp(`'${cfg.cassandra.localDataCenter}': 1`));
    // Published ports map to the port the broker listens on; none taken twice.
    for (const p of s.ports ?? []) {
      const [host, container] = p.split(':');
      assert.equal(Number(container), cfg.http.port, `${name} publishes its SB_PORT`);
      assert.ok(!hostPorts.has(host!), `host port ${host} used once`);
      hostPorts.add(host!);
    }
    const deps = s.depends_on as Record<string, { condition: string }>;
    for (const dep of [...natsServers.map(([n]) => n), cassHost!])
      assert.equal(deps[dep]?.condition, 'service_healthy', `${name} waits for ${dep}`);
    assert.ok(Number.parseInt(s.stop_grace_period ?? '0', 10) > 30, 'stop grace above the 30 s drain');
  }
  assert.equal(ids.size, brokers.length, 'node ids are unique');
});

test('compose - the load balancer spreads over every broker on its SB_PORT', () => {
  const lb = services['lb'];
  assert.ok(lb, 'an lb service');
  const mount = lb.volumes?.[0]?.split(':')[0] ?? '';
  const conf = readFileSync(`${ROOT}deploy/${mount}`, 'utf8');
  const upstream = [...conf.matchAll(/server\s+([a-z0-9]+):(\d+);/g)].map((m) => `${m[1]}:${m[2]}`);
  assert.deepEqual(upstream.sort(), brokers.map(([n, s]) => `${n}:${s.environment?.['SB_PORT']}`).sort());
  assert.match(conf, /proxy_set_header Upgrade \$http_upgrade/, 'WebSocket upgrades pass through');
  const [host, container] = (lb.ports?.[0] ?? '').split(':');
  assert.match(conf, new RegExp(`listen ${container};`));
  assert.equal(host, '8080');
});
