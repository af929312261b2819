/**
 * deploy/k8s without a cluster: `kubectl kustomize` renders every overlay, every rendered object of a
 * built-in kind (and the Prometheus Operator's) validates against the Kubernetes JSON schemas of
 * `kubernetes-models`, and the objects agree with each other and with the broker: probes, drain and
 * grace period, selectors, the CLI's options, the configuration through src/config.ts, the Cassandra
 * service and replication against the K8ssandraCluster, NATS against its Helm values, Secrets, and the
 * NetworkPolicies against the labels of the pods they are meant for.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parse, parseAllDocuments } from 'yaml';
import { configFromEnv, parseConfig } from '../../src/config.js';
import { DEFAULT_WORKER_STOP_GRACE_MS } from '../../src/supervisor-options.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const K8S = `${ROOT}deploy/k8s/`;
const CLI = `${ROOT}dist/src/cli.js`;

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are untyped YAML
type Obj = Record<string, any>;
// biome-ignore lint/suspicious/noExplicitAny: each model class takes its own kind's shape
type Validator = new (o: any) => { validate(): void };
const SCHEMAS: Record<string, Validator> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};
/** Operator kinds with no schema in the library: checked field by field below. */
const OPERATOR_KINDS = [
  'k8ssandra.io/v1alpha1/K8ssandraCluster',
  'medusa.k8ssandra.io/v1alpha1/MedusaBackupSchedule',
];
/** Secrets production creates out of band (listed in overlays/production/kustomization.yaml). */
const OUT_OF_BAND_SECRETS = ['switchboard-secrets', 'switchboard-tenants', 'medusa-bucket-key'];

const natsValues = parse(readFileSync(`${K8S}nats/values.yaml`, 'utf8')) as Obj;
/** Labels of the pods the NetworkPolicies are written for, besides the brokers (from the Deployment). */
const natsPodLabels = {
  'app.kubernetes.io/name': 'nats',
  'app.kubernetes.io/instance': 'nats',
  'app.kubernetes.io/component': 'nats',
};
const cassandraPodLabels = (cluster: string, dc: string) => ({
  'cassandra.datastax.com/cluster': cluster,
  'cassandra.datastax.com/datacenter': dc,
});

function render(dir: string): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return parseAllDocuments(out)
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);
}

const unwrapped = (data: Obj | undefined) =>
  Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, String(v).replace(/\s+/g, '')]));

const matches = (selector: Obj | undefined, labels: Obj) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);

function helpOptions(args: string[]): Set<string> {
  const help = execFileSync(process.execPath, [CLI, ...args, '--help'], { encoding: 'utf8' });
  return new Set([...help.matchAll(/(?:^|[\s,])(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]!));
}

const overlays = readdirSync(`${K8S}overlays`);

test('k8s - there are dev and production overlays', () => {
  assert.deepEqual([...overlays].sort(), ['dev', 'production']);
});

for (const overlay of overlays) {
  describe(`k8s - overlay ${overlay}`, () => {
    const objects = render(`${K8S}overlays/${overlay}`);
    const find = (kind: string, name?: string) =>
      objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
    const one = (kind: string, name?: string): Obj => {
      const found = find(kind, name);
      assert.equal(found.length, 1, `one ${kind} ${name ?? ''}`);
      return found[0]!;
    };

    test('renders objects that validate against the Kubernetes schemas', () => {
      assert.ok(objects.length >= 12, `${objects.length} objects`);
      for (const o of objects) {
        const key = `${o.apiVersion}/${o.kind}`;
        const Schema = SCHEMAS[key];
        // kustomize wraps long base64 values over lines; the API server's decoder skips the newlines.
        const obj = o.kind === 'Secret' ? { ...o, data: unwrapped(o.data) } : o;
        if (Schema) assert.doesNotThrow(() => new Schema(obj).validate(), `${key} ${o.metadata.name}`);
        else assert.ok(OPERATOR_KINDS.includes(key), `${key} has a schema or a check of its own`);
      }
      // The validator does reject a broken object (it is not a no-op).
      const d = structuredClone(one('Deployment'));
      d.spec.replicas = 'three';
      assert.throws(() => new Deployment(d).validate(), /replicas must be integer/);
    });

    test('broker Deployment: readiness /readyz, preStop, grace above the drain, anti-affinity', () => {
      const d = one('Deployment', 'switchboard-broker');
      const pod = d.spec.template.spec;
      const c = pod.containers.find((x: Obj) => x.name === 'broker');
      assert.equal(c.readinessProbe.httpGet.path, '/readyz');
      assert.equal(c.livenessProbe.httpGet.path, '/healthz');
      const port = c.ports.find((p: Obj) => p.name === c.readinessProbe.httpGet.port);
      assert.ok(port, 'probes use a named container port');
      const preStop = c.lifecycle.preStop.exec.command as string[];
      assert.equal(preStop[0], 'sleep');
      const drainS = DEFAULT_WORKER_STOP_GRACE_MS / 1000;
      assert.ok(
        pod.terminationGracePeriodSeconds > Number(preStop[1]) + drainS,
        `grace ${pod.terminationGracePeriodSeconds} s > preStop ${preStop[1]} s + drain ${drainS} s`,
      );
      assert.equal(d.spec.strategy.rollingUpdate.maxUnavailable, 0);
      const serve = helpOptions(['serve']);
      assert.equal(c.args[0], 'serve');
      for (const a of (c.args as string[]).filter((x) => x.startsWith('--')))
        assert.ok(serve.has(a), `'switchboard serve' has ${a}`);
      const anti = pod.affinity.podAntiAffinity;
      const term =
        overlay === 'production'
          ? anti.requiredDuringSchedulingIgnoredDuringExecution?.[0]
          : anti.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.podAffinityTerm;
      assert.ok(term, 'anti-affinity (required in production)');
      assert.equal(term.topologyKey, 'kubernetes.io/hostname');
      assert.ok(matches(term.labelSelector.matchLabels, d.spec.template.metadata.labels));
      assert.equal(pod.securityContext.runAsNonRoot, true);
    });

    test('PDB, HPA, Service and ServiceMonitor select the broker pods', () => {
      const d = one('Deployment', 'switchboard-broker');
      const labels = d.spec.template.metadata.labels;
      assert.ok(matches(d.spec.selector.matchLabels, labels));
      const pdb = one('PodDisruptionBudget');
      assert.ok(matches(pdb.spec.selector.matchLabels, labels));
      assert.equal(pdb.spec.maxUnavailable, 1);
      const hpa = one('HorizontalPodAutoscaler');
      assert.deepEqual(
        [hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name],
        ['Deployment', d.metadata.name],
      );
      assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas);
      const svc = one('Service', 'switchboard');
      assert.ok(matches(svc.spec.selector, labels));
      for (const sm of find('ServiceMonitor')) {
        assert.ok(matches(sm.spec.selector.matchLabels, svc.metadata.labels));
        assert.ok(svc.spec.ports.some((p: Obj) => p.name === sm.spec.endpoints[0].port));
      }
      if (overlay === 'production') assert.equal(find('ServiceMonitor').length, 1);
    });

    test('the configuration parses with the broker own config module and matches Cassandra and NATS', () => {
      const d = one('Deployment', 'switchboard-broker');
      const c = d.spec.template.spec.containers[0];
      const cm = one('ConfigMap', c.envFrom[0].configMapRef.name);
      const source = readFileSync(`${ROOT}src/config.ts`, 'utf8');
      const env: Record<string, string> = { ...cm.data, NODE_ENV: 'production' };
      for (const e of c.env as Obj[]) {
        if (e.value !== undefined)
          env[e.name] = String(e.value).replace('$(POD_NAME)', 'switchboard-broker-7f9c-x2x4z');
        else if (e.valueFrom?.secretKeyRef) env[e.name] = 'a-secret-from-the-secret-0123456789abcdef';
      }
      for (const key of Object.keys(env).filter((k) => /^(SB|OTEL)_/.test(k)))
        assert.ok(source.includes(`'${key}'`), `${key} is read by src/config.ts`);
      const cfg = parseConfig(configFromEnv(env));
      assert.equal(cfg.http.host, '0.0.0.0');
      assert.equal(cfg.http.port, c.ports[0].containerPort);
      // Cassandra: cass-operator's Service <cluster>-<dc>-service, the data center, RF within its size.
      const k8c = one('K8ssandraCluster');
      const dc = k8c.spec.cassandra.datacenters[0];
      assert.match(k8c.spec.cassandra.serverVersion, /^5\.\d+\.\d+$/);
      assert.deepEqual(cfg.cassandra.contactPoints, [
        `${k8c.metadata.name}-${dc.metadata.name}-service:9042`,
      ]);
      assert.equal(cfg.cassandra.localDataCenter, dc.metadata.name);
      const rf = Number(new RegExp(`'${dc.metadata.name}': (\\d+)`).exec(cfg.cassandra.replication)?.[1]);
      assert.ok(rf >= 1 && rf <= dc.size, `RF ${rf} within ${dc.size} nodes`);
      assert.ok(dc.storageConfig.cassandraDataVolumeClaimSpec.resources.requests.storage);
      if (overlay === 'production') {
        assert.equal(rf, 3);
        assert.equal(cfg.cassandra.consistency, 'LOCAL_QUORUM');
        assert.ok(k8c.spec.medusa.storageProperties.storageSecretRef.name);
        const schedule = one('MedusaBackupSchedule');
        assert.equal(schedule.spec.backupSpec.cassandraDatacenter, dc.metadata.name);
        assert.match(schedule.spec.cronSchedule, /^(\S+\s){4}\S+$/);
      }
      // NATS: the Helm release's client Service, 3 servers with JetStream on volumes.
      const nats = new URL(cfg.nats.servers[0]!);
      assert.equal(nats.hostname, natsValues['fullnameOverride']);
      assert.equal(nats.port, '4222');
      assert.equal(natsValues['config'].cluster.enabled, true);
      assert.equal(natsValues['config'].cluster.replicas, 3);
      assert.equal(cfg.nats.replicas, natsValues['config'].cluster.replicas, 'R3 buckets and streams');
      assert.equal(natsValues['config'].jetstream.enabled, true);
      assert.equal(natsValues['config'].jetstream.fileStore.pvc.enabled, true);
    });

    test('Secrets: every one referenced is rendered, or created out of band in production', () => {
      const d = one('Deployment', 'switchboard-broker');
      const pod = d.spec.template.spec;
      const refs = new Set<string>([
        ...pod.containers.flatMap((c: Obj) =>
          (c.env ?? []).flatMap((e: Obj) => e.valueFrom?.secretKeyRef?.name ?? []),
        ),
        ...pod.volumes.flatMap((v: Obj) => v.secret?.secretName ?? []),
        ...find('K8ssandraCluster').flatMap(
          (k) => k.spec.medusa?.storageProperties?.storageSecretRef?.name ?? [],
        ),
        ...find('ServiceMonitor').flatMap((s) =>
          s.spec.endpoints.map((e: Obj) => e.authorization.credentials.name),
        ),
      ]);
      const rendered = new Set(find('Secret').map((s) => s.metadata.name));
      const notes = readFileSync(`${K8S}overlays/${overlay}/kustomization.yaml`, 'utf8');
      for (const name of refs) {
        if (rendered.has(name)) continue;
        assert.equal(overlay, 'production', `${name} is rendered in ${overlay}`);
        assert.ok(OUT_OF_BAND_SECRETS.includes(name) && notes.includes(name), `${name} is documented`);
      }
      if (overlay === 'dev') {
        const keys = one(
          'Secret',
          [...refs].find((r) => r.startsWith('switchboard-secrets')),
        ).data;
        assert.deepEqual(Object.keys(keys).sort(), ['SB_ADMIN_TOKEN', 'SB_JWT_SECRET']);
      }
    });

    test('NetworkPolicies select the pods they are written for and open what the broker needs', () => {
      const d = one('Deployment', 'switchboard-broker');
      const k8c = one('K8ssandraCluster');
      const pods = [
        d.spec.template.metadata.labels,
        natsPodLabels,
        cassandraPodLabels(k8c.metadata.name, k8c.spec.cassandra.datacenters[0].metadata.name),
      ];
      const policies = find('NetworkPolicy');
      assert.equal(policies.length, 3);
      for (const p of policies) {
        const selectors = [
          p.spec.podSelector.matchLabels,
          ...[...(p.spec.ingress ?? []), ...(p.spec.egress ?? [])].flatMap((r: Obj) =>
            [...(r.from ?? []), ...(r.to ?? [])]
              .filter((peer: Obj) => peer.podSelector && !peer.namespaceSelector)
              .map((peer: Obj) => peer.podSelector.matchLabels),
          ),
        ];
        for (const s of selectors)
          assert.ok(
            pods.some((labels) => matches(s, labels)),
            `${p.metadata.name}: selector ${JSON.stringify(s)} matches a pod`,
          );
      }
      const broker = policies.find((p) => matches(p.spec.podSelector.matchLabels, pods[0]!))!;
      const egressTo = (port: number, labels: Obj) =>
        broker.spec.egress.some(
          (r: Obj) =>
            r.ports.some((x: Obj) => x.port === port) &&
            (r.to ?? []).some((peer: Obj) => matches(peer.podSelector?.matchLabels, labels)),
        );
      assert.ok(egressTo(4222, natsPodLabels), 'broker -> NATS 4222');
      assert.ok(egressTo(9042, pods[2]!), 'broker -> Cassandra 9042');
      assert.ok(
        broker.spec.egress.some((r: Obj) => r.ports.some((x: Obj) => x.port === 53)),
        'broker -> DNS',
      );
      assert.ok(broker.spec.ingress[0].ports.some((x: Obj) => x.port === 8080));
    });
  });
}
