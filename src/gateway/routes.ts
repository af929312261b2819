/**
 * The HTTP route table: every route the gateway registers, in uWS pattern form (`:param`). The
 * gateway registers exactly these (its handler map is typed by RouteKey, so a route without a
 * handler or a handler without a route does not compile), and test/unit/openapi.test.ts checks that
 * docs/openapi.yaml describes exactly these.
 */
export const HTTP_ROUTES = [
  { method: 'get', path: '/healthz', auth: 'none' },
  { method: 'get', path: '/readyz', auth: 'none' },
  { method: 'get', path: '/metrics', auth: 'operator' },
  { method: 'get', path: '/admin/shards', auth: 'operator' },
  { method: 'get', path: '/api/v1/conversations/:id/messages', auth: 'apiKey:api|token' },
] as const satisfies readonly { method: 'get' | 'post' | 'put'; path: string; auth: string }[];

export type HttpRoute = (typeof HTTP_ROUTES)[number];
export type RouteKey = `${HttpRoute['method']} ${HttpRoute['path']}`;

export function routeKey(r: HttpRoute): RouteKey {
  return `${r.method} ${r.path}` as RouteKey;
}
