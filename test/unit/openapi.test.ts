/**
 * docs/openapi.yaml describes exactly the HTTP routes the gateway registers (src/gateway/routes.ts),
 * and every error code it names is one of the registry's.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { HTTP_ROUTES } from '../../src/gateway/routes.js';
import { isErrorCode } from '../../src/protocol/errors.js';

const DOC = fileURLToPath(new URL('../../../docs/openapi.yaml', import.meta.url));
const text = readFileSync(DOC, 'utf8');
const doc = parse(text) as {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
};
const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']);

/** uWS `:param` → OpenAPI `{param}`. */
const toOpenApi = (path: string) => path.replace(/:([A-Za-z]+)/g, '{$1}');

test('openapi - the document is OpenAPI 3.1', () => {
  assert.match(doc.openapi, /^3\.1\./);
});

test('openapi - every gateway route is documented, and every documented route exists', () => {
  // uWS names DELETE `del`.
  const method = (m: string) => (m === 'del' ? 'delete' : m);
  const code = new Set(HTTP_ROUTES.map((r) => `${method(r.method)} ${toOpenApi(r.path)}`));
  const documented = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item)) if (METHODS.has(method)) documented.add(`${method} ${path}`);
  }
  assert.deepEqual(
    [...code].filter((r) => !documented.has(r)),
    [],
    'routes missing from openapi.yaml',
  );
  assert.deepEqual(
    [...documented].filter((r) => !code.has(r)),
    [],
    'documented routes the gateway lacks',
  );
});

test('openapi - every path parameter is declared', () => {
  const componentParams =
    (doc as unknown as { components: { parameters?: Record<string, { name: string }> } }).components
      .parameters ?? {};
  for (const [path, item] of Object.entries(doc.paths)) {
    const names = [...path.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => m[1]);
    if (names.length === 0) continue;
    const serialized = JSON.stringify(item);
    for (const n of names) {
      // Inline, or by a $ref to a components.parameters entry of that name.
      const byRef = [...serialized.matchAll(/"#\/components\/parameters\/([A-Za-z]+)"/g)].some(
        (m) => componentParams[m[1] ?? '']?.name === n,
      );
      const declared = serialized.includes(`"name":"${n}"`) || byRef;
      assert.ok(declared, `${path} declares its path parameter ${n}`);
    }
  }
});

test('openapi - the error codes of its error responses are registered', () => {
  const responses = (doc as unknown as { components: { responses: Record<string, { description: string }> } })
    .components.responses;
  let seen = 0;
  for (const [name, r] of Object.entries(responses)) {
    for (const m of r.description.matchAll(/`([a-z_]+)`/g)) {
      seen++;
      assert.ok(isErrorCode(m[1]), `${name}: \`${m[1]}\` is an error code of src/protocol/errors.ts`);
    }
  }
  assert.ok(seen >= 10, 'the error responses name their codes');
});
