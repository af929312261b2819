/**
 * A stand-in shop for the browser tests, on an origin of its own: its pages embed the widget from
 * the broker with one script tag, and its backend signs visitor tokens (the token contract of
 * docs/WIDGET.md). `?hostile=1` adds the kind of CSS a real shop page may carry, aimed at anything
 * the widget could be made of.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Authenticator } from '../../src/gateway/auth.js';
import { DEFAULT_WEB_DIR } from '../../src/gateway/static-files.js';

export const HOSTILE_CSS = `
* { font-size: 31px !important; color: #f0f !important; line-height: 3 !important; letter-spacing: 4px !important; }
div, section, header, form, button, textarea, span { display: inline !important; position: static !important;
  background: yellow !important; border: 5px dashed red !important; margin: 20px !important; padding: 0 !important;
  width: 10px !important; visibility: visible; }
button { opacity: 0.1 !important; }
textarea { visibility: hidden !important; }
body > :not(main) { transform: rotate(3deg); }
`;

export interface Shop {
  readonly base: string;
  close(): Promise<void>;
}

/**
 * Serves `/?visitor=<id>&lang=&theme=&hostile=1&open=1&offline=1&via=<base>` (a page embedding
 * `<broker>/widget.js`, or `<via>/widget.js`: a proxy in front of the broker) and
 * `/token?visitor=<id>&ttl=<s>` (the shop backend: a visitor token for that shopper, default 10 minutes).
 */
export function startShop(opts: { broker: string; tenant: string; auth: Authenticator }): Promise<Shop> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://shop');
    const visitor = url.searchParams.get('visitor') ?? 'shopper';
    if (url.pathname === '/widget.js') {
      // A copy of the widget served by the shop itself: its socket then goes to the shop, which
      // has no broker, so it stays offline (`?offline=1`).
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(readFileSync(`${DEFAULT_WEB_DIR}widget.js`));
      return;
    }
    if (url.pathname === '/token') {
      const ttl = Math.min(600, Math.max(1, Number(url.searchParams.get('ttl') ?? 600) || 600));
      void opts.auth.sign({ tenant: opts.tenant, sub: visitor, role: 'visitor' }, ttl).then((token) => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ token }));
      });
      return;
    }
    const attr = (name: string, v: string | null) => (v ? ` data-${name}="${v.replace(/"/g, '')}"` : '');
    const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
${url.searchParams.get('hostile') ? `<style>${HOSTILE_CSS}</style>` : ''}</head>
<body><main><h1>Shop</h1><p>Products…</p></main>
<script src="${url.searchParams.get('offline') ? '' : (url.searchParams.get('via')?.replace(/"/g, '') ?? opts.broker)}/widget.js" data-tenant="${opts.tenant}" data-token-url="/token?visitor=${encodeURIComponent(visitor)}&amp;ttl=${Number(url.searchParams.get('ttl') ?? 600)}"${attr('lang', url.searchParams.get('lang'))}${attr('theme', url.searchParams.get('theme'))}${attr('open', url.searchParams.get('open') ? 'true' : null)}></script>
</body></html>`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      resolve({
        base: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
