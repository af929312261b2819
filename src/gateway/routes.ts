/**
 * The HTTP route table: every route the gateway registers, in uWS pattern form (`:param`). The
 * gateway registers exactly these (its handler map is typed by RouteKey, so a route without a
 * handler or a handler without a route does not compile), and test/unit/openapi.test.ts checks that
 * docs/openapi.yaml describes exactly these. Method `del` is uWS's name for DELETE.
 */
export const HTTP_ROUTES = [
  { method: 'get', path: '/healthz', auth: 'none' },
  { method: 'get', path: '/readyz', auth: 'none' },
  { method: 'get', path: '/metrics', auth: 'operator' },
  { method: 'get', path: '/admin/shards', auth: 'operator' },
  { method: 'post', path: '/api/v1/conversations', auth: 'apiKey:api' },
  { method: 'get', path: '/api/v1/conversations/:id', auth: 'apiKey:api' },
  { method: 'get', path: '/api/v1/conversations/:id/messages', auth: 'apiKey:api|token' },
  { method: 'post', path: '/api/v1/conversations/:id/messages', auth: 'apiKey:api' },
  { method: 'post', path: '/api/v1/conversations/:id/close', auth: 'apiKey:api' },
  { method: 'post', path: '/api/v1/conversations/:id/transfer', auth: 'apiKey:api' },
  { method: 'get', path: '/api/v1/visitors/:visitor/conversations', auth: 'apiKey:api' },
  { method: 'get', path: '/api/v1/queue', auth: 'apiKey:admin|token' },
  { method: 'put', path: '/api/v1/agents/:agent/status', auth: 'apiKey:admin' },
  // The support desk (issue #17, src/gateway/desk-routes.ts): canned replies, labels, the audit of changes.
  { method: 'get', path: '/api/v1/canned', auth: 'apiKey:admin|token' },
  { method: 'put', path: '/api/v1/canned/:shortcut', auth: 'apiKey:admin' },
  { method: 'del', path: '/api/v1/canned/:shortcut', auth: 'apiKey:admin' },
  { method: 'get', path: '/api/v1/agents/:agent/canned', auth: 'apiKey:admin|token' },
  { method: 'put', path: '/api/v1/agents/:agent/canned/:shortcut', auth: 'apiKey:admin|token' },
  { method: 'del', path: '/api/v1/agents/:agent/canned/:shortcut', auth: 'apiKey:admin|token' },
  { method: 'get', path: '/api/v1/conversations', auth: 'apiKey:api' },
  { method: 'post', path: '/api/v1/conversations/:id/labels', auth: 'apiKey:api' },
  { method: 'get', path: '/api/v1/conversations/:id/audit', auth: 'apiKey:audit' },
  { method: 'get', path: '/api/v1/left-messages', auth: 'apiKey:admin|token' },
  // The browser files (static-files.ts) and, in development mode only, the demo (dev-tokens.ts).
  { method: 'get', path: '/widget.js', auth: 'none' },
  { method: 'get', path: '/console', auth: 'none' },
  { method: 'get', path: '/console.js', auth: 'none' },
  { method: 'get', path: '/console.css', auth: 'none' },
  { method: 'get', path: '/demo', auth: 'dev' },
  { method: 'get', path: '/dev/token', auth: 'dev' },
] as const satisfies readonly { method: 'get' | 'post' | 'put' | 'del'; path: string; auth: string }[];

export type HttpRoute = (typeof HTTP_ROUTES)[number];
/** `"<method> <path>"` of each route (distributed over the union, not the cross product). */
export type RouteKey = HttpRoute extends infer R
  ? R extends { method: infer M extends string; path: infer P extends string }
    ? `${M} ${P}`
    : never
  : never;

export function routeKey(r: HttpRoute): RouteKey {
  return `${r.method} ${r.path}` as RouteKey;
}
