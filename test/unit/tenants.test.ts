/**
 * The tenant registry: validation with path and line, merging over defaults, API-key lookup by hash,
 * and hot reload (a good change takes effect, a bad one keeps the previous configuration).
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tenantIntegration, tenantIntegrationSource } from '../../src/integration/tenant-source.js';
import {
  BUILTIN_TENANT_DEFAULTS,
  defaultTenantsSnapshot,
  hashApiKey,
  loadTenantsFile,
  parseTenantsYaml,
  TenantRegistry,
  TenantsConfigError,
} from '../../src/tenants.js';

const EXAMPLE = fileURLToPath(new URL('../../../deploy/tenants.example.yaml', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sb-tenants-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const logs: { level: string; msg: string; obj: object }[] = [];
const log = {
  info: (obj: object, msg: string) => logs.push({ level: 'info', msg, obj }),
  error: (obj: object, msg: string) => logs.push({ level: 'error', msg, obj }),
};

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('tenants - the documented example validates', () => {
  const parsed = parseTenantsYaml(readFileSync(EXAMPLE, 'utf8'));
  assert.ok(parsed.tenants?.['acme']);
});

test('tenants - errors name the path and the line', () => {
  const cases: [string, RegExp][] = [
    [
      'version: 1\ntenants:\n  acme:\n    rateLimits:\n      httpBurst: -3\n',
      /tenants\.acme\.rateLimits\.httpBurst \(line 5\)/,
    ],
    ['version: 1\ntenants:\n  acme:\n    origin: []\n', /tenants\.acme \(line \d\).*origin/],
    [
      'version: 1\ntenants:\n  acme:\n    origins: [https://a.example/path]\n',
      /tenants\.acme\.origins\.0 \(line 4\)/,
    ],
    ['version: 1\ntenants:\n  "a.b": {}\n', /tenants/],
    ['version: 2\n', /version \(line 1\)/],
    [
      'version: 1\ntenants:\n  acme:\n    apiKeys:\n      - id: k\n        sha256: nothex\n',
      /apiKeys\.0\.sha256 \(line 6\)/,
    ],
    ['version: 1\nauth:\n  keys:\n    - kid: a\n      alg: none\n', /auth\.keys\.0/],
    ['version: 1\n  bad: [indent\n', /line \d+/],
    ['version: 1\nversion: 1\n', /line 2/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseTenantsYaml(text),
      (err: Error) => {
        assert.ok(err instanceof TenantsConfigError, `${text}: ${err}`);
        assert.match(err.message, re, text);
        return true;
      },
    );
  }
});

test('tenants - listed tenants merge over defaults; unknown tenants get the defaults', async () => {
  const key = 'sbk_test_acme_1';
  const file = write(
    'merge.yaml',
    [
      'version: 1',
      'defaults:',
      '  origins: [https://default.example]',
      '  rateLimits: { connectionFramesPerS: 7 }',
      'tenants:',
      '  acme:',
      '    origins: [https://shop.acme.example]',
      '    rateLimits: { connectionBurst: 3 }',
      '    apiKeys:',
      `      - { id: k1, sha256: ${hashApiKey(key)}, scopes: [api, admin] }`,
      '',
    ].join('\n'),
  );
  const s = await loadTenantsFile(file);
  const acme = s.tenant('acme');
  assert.equal(acme.listed, true);
  assert.deepEqual(acme.origins, ['https://shop.acme.example']);
  assert.equal(acme.rateLimits.connectionFramesPerS, 7);
  assert.equal(acme.rateLimits.connectionBurst, 3);
  assert.equal(acme.rateLimits.httpBurst, BUILTIN_TENANT_DEFAULTS.rateLimits.httpBurst);
  const other = s.tenant('nobody');
  assert.equal(other.listed, false);
  assert.equal(other.id, '*');
  assert.deepEqual(other.origins, ['https://default.example']);
  assert.equal(other.apiKeys.length, 0);

  const m = s.findApiKey(key);
  assert.equal(m?.tenant, 'acme');
  assert.deepEqual(m?.key.scopes, ['api', 'admin']);
  assert.equal(s.findApiKey(`${key}x`), undefined);
  assert.equal(s.findApiKey(''), undefined);
});

test('tenants - no file: built-in defaults for everyone', () => {
  const s = defaultTenantsSnapshot();
  assert.deepEqual(s.tenant('x').origins, ['*']);
  assert.equal(s.jwtKeys.length, 0);
});

test('tenants - duplicate key hashes and kids are refused', async () => {
  const h = hashApiKey('same');
  const dupKey = write(
    'dup.yaml',
    `version: 1\ntenants:\n  a:\n    apiKeys: [{ id: x, sha256: ${h} }]\n  b:\n    apiKeys: [{ id: y, sha256: ${h} }]\n`,
  );
  await assert.rejects(loadTenantsFile(dupKey), /same hash/);
  const secret = 'x'.repeat(32);
  const dupKid = write(
    'dupkid.yaml',
    `version: 1\nauth:\n  keys:\n    - { kid: k, alg: HS256, secret: ${secret} }\n    - { kid: k, alg: HS256, secret: ${secret} }\n`,
  );
  await assert.rejects(loadTenantsFile(dupKid), /appears twice/);
  const missing = write(
    'missing.yaml',
    'version: 1\nauth:\n  keys:\n    - { kid: r, alg: RS256, publicKeyFile: ./nope.pem }\n',
  );
  await assert.rejects(loadTenantsFile(missing), /auth\.keys\.0 \(kid r\): cannot read/);
});

test('tenants - hot reload: a good change applies, a bad one keeps the previous config', async () => {
  const file = write('live.yaml', 'version: 1\ntenants:\n  acme:\n    origins: [https://one.example]\n');
  const reg = await TenantRegistry.open({ file, debounceMs: 20, log });
  // The watcher and its debounce timer do not keep a process alive (by design); this test must.
  const keepAlive = setInterval(() => {}, 1000);
  try {
    assert.deepEqual(reg.tenant('acme').origins, ['https://one.example']);
    const changed = new Promise((resolve) => reg.onChange(resolve));
    writeFileSync(file, 'version: 1\ntenants:\n  acme:\n    origins: [https://two.example]\n');
    await changed; // through fs.watch and the debounce
    assert.deepEqual(reg.tenant('acme').origins, ['https://two.example']);
    assert.equal(reg.current.generation, 1);

    writeFileSync(file, 'version: 1\ntenants:\n  acme:\n    origins: [not an origin]\n');
    assert.equal(await reg.reload(), false);
    assert.deepEqual(reg.tenant('acme').origins, ['https://two.example']);
    const refused = logs.find((l) => l.level === 'error');
    assert.match(JSON.stringify(refused?.obj), /tenants\.acme\.origins\.0 \(line 4\)/);

    // A preparer (the authenticator uses one for keys) can refuse a snapshot, too.
    await reg.use(async (next) => {
      if (next.tenant('acme').origins.includes('https://three.example')) throw new Error('no three');
      return undefined;
    });
    writeFileSync(file, 'version: 1\ntenants:\n  acme:\n    origins: [https://three.example]\n');
    assert.equal(await reg.reload(), false);
    assert.deepEqual(reg.tenant('acme').origins, ['https://two.example']);
  } finally {
    clearInterval(keepAlive);
    reg.close();
  }
});

test('tenants - a bad file at start is an error, not a silent default', async () => {
  const file = write('bad.yaml', 'version: 1\ntenants: 3\n');
  await assert.rejects(TenantRegistry.open({ file, log }), TenantsConfigError);
});

test('tenants - the integration section: rules file relative to the file, webhooks, context, actions', async () => {
  const file = write(
    'integration.yaml',
    [
      'version: 1',
      'defaults:',
      '  integration: { context: { kinds: [orders], timeoutMs: 500 } }',
      'tenants:',
      '  acme:',
      '    integration:',
      '      rulesFile: rules/acme.yaml',
      '      webhooks: [{ id: crm, url: "https://crm.example/hook", secret: whsec-0123456789ab, events: [closed] }]',
      '      actions: [{ name: mark-abnormal }, { name: coupon, subject: erp.coupon, roles: [supervisor] }]',
      '  beta: {}',
      '',
    ].join('\n'),
  );
  const s = await loadTenantsFile(file);
  const acme = tenantIntegration(s, 'acme');
  assert.equal(acme.rulesFile, join(dir, 'rules', 'acme.yaml'));
  assert.deepEqual(acme.webhooks, [
    { id: 'crm', url: 'https://crm.example/hook', secret: 'whsec-0123456789ab', events: ['closed'] },
  ]);
  assert.deepEqual(acme.actions, [
    { name: 'mark-abnormal', subject: 'action.mark-abnormal', roles: ['agent'], timeoutMs: 5000 },
    { name: 'coupon', subject: 'erp.coupon', roles: ['supervisor'], timeoutMs: 5000 },
  ]);
  // acme's section replaces the defaults' section field by field: context comes from the defaults.
  assert.deepEqual(acme.context.kinds, ['orders']);
  assert.equal(tenantIntegration(s, 'beta').context.timeoutMs, 500);
  assert.equal(tenantIntegration(s, 'beta').rulesFile, null);
  assert.deepEqual(s.tenantIds(), ['acme', 'beta']);
  const bad = (line: string) =>
    assert.throws(
      () => parseTenantsYaml(['version: 1', 'tenants:', '  acme:', '    integration:', line, ''].join('\n')),
      TenantsConfigError,
    );
  bad('      webhooks: [{ id: w, url: "ftp://x", secret: whsec-0123456789ab }]');
  bad('      webhooks: [{ id: w, url: "https://x", secret: short }]');
  bad('      actions: [{ name: "a.b" }]');
  bad('      actions: [{ name: a, subject: "sb.>" }]');
  bad('      context: { timeoutMs: 60000 }');
});

test('tenants - the integration source says whether any tenant, or the defaults, has a webhook', async () => {
  const hook = '{ id: crm, url: "https://crm.example/hook", secret: whsec-0123456789ab }';
  const cases: [string, string[], boolean][] = [
    ['none.yaml', ['version: 1', 'tenants:', '  acme: {}'], false],
    [
      'listed.yaml',
      ['version: 1', 'tenants:', '  acme: {}', `  beta: { integration: { webhooks: [${hook}] } }`],
      true,
    ],
    [
      'defaults.yaml',
      ['version: 1', `defaults: { integration: { webhooks: [${hook}] } }`, 'tenants: {}'],
      true,
    ],
  ];
  for (const [name, lines, expected] of cases) {
    const registry = await TenantRegistry.open({ file: write(name, `${lines.join('\n')}\n`), log });
    try {
      assert.equal(tenantIntegrationSource(registry).hasWebhooks(), expected, name);
    } finally {
      registry.close();
    }
  }
});
