/**
 * The browser files the node serves itself (issue #15): the visitor widget (`/widget.js`), the agent
 * console (`/console`, `/console.js`, `/console.css`) and, in development mode, a demo shop page
 * (`/demo`). They are built by `npm run build` (src/web/build.mjs, esbuild) into dist/web/ and read once
 * at gateway start: a small fixed set held in memory with its gzip form and an ETag, so a request
 * never touches the disk. HTML pages carry a content security policy (scripts and styles from this
 * node only, sockets to this node only, no framing).
 */

import type { HttpRequest } from 'uWebSockets.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { SwitchboardError } from '../protocol/errors.js';
import type { TrackedResponse } from './http.js';

/** dist/web/, next to dist/src/ where this module runs from. */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

/** The widget is embedded on shop pages under a fixed URL: cached briefly, then revalidated by ETag. */
export const WIDGET_CACHE_CONTROL = 'public, max-age=300, stale-while-revalidate=86400';
/** Console files keep fixed names too: always revalidated, so a new build is seen at once. */
export const CONSOLE_CACHE_CONTROL = 'no-cache';

export type AssetName = 'widget.js' | 'console.html' | 'console.js' | 'console.css' | 'demo.html';

const TYPES: Record<AssetName, string> = {
  'widget.js': 'text/javascript; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'console.html': 'text/html; charset=utf-8',
  'demo.html': 'text/html; charset=utf-8',
};

interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly gzip: Buffer;
  readonly etag: string;
}

/**
 * The content security policy of the node's HTML pages: only this node's scripts and styles, and
 * WebSockets back to the host the page was loaded from (`host` is the request's Host header).
 */
export function pageCsp(host: string): string {
  const safeHost = /^[A-Za-z0-9.:[\]-]{1,255}$/.test(host) ? host : '';
  const ws = safeHost ? ` ws://${safeHost} wss://${safeHost}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${ws}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The built files, loaded once; a file that was not built answers 404 with a hint. */
export class WebAssets {
  private readonly assets = new Map<AssetName, Asset>();

  constructor(dir: string = DEFAULT_WEB_DIR) {
    for (const name of Object.keys(TYPES) as AssetName[]) {
      let body: Buffer;
      try {
        body = readFileSync(`${dir}${name}`);
      } catch {
        continue;
      }
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      this.assets.set(name, { type: TYPES[name], body, gzip: gzipSync(body, { level: 9 }), etag });
    }
  }

  has(name: AssetName): boolean {
    return this.assets.has(name);
  }

  /**
   * Answers GET for one file: 200 (gzip when the client accepts it) or 304 for a matching
   * If-None-Match; 404 `not_found` when the file was not built. Synchronous (reads `req` first).
   */
  serve(t: TrackedResponse, req: HttpRequest, name: AssetName): void {
    const a = this.assets.get(name);
    if (!a) throw new SwitchboardError('not_found', `${name} was not built (npm run build)`);
    const gzip = /\bgzip\b/.test(req.getHeader('accept-encoding'));
    const notModified = req.getHeader('if-none-match') === a.etag;
    const html = name.endsWith('.html');
    const csp = html ? pageCsp(req.getHeader('host')) : undefined;
    if (t.aborted) return;
    t.res.cork(() => {
      t.res.writeStatus(notModified ? '304 Not Modified' : '200 OK');
      t.res.writeHeader('etag', a.etag);
      t.res.writeHeader('cache-control', name === 'widget.js' ? WIDGET_CACHE_CONTROL : CONSOLE_CACHE_CONTROL);
      t.res.writeHeader('vary', 'accept-encoding');
      t.res.writeHeader('x-content-type-options', 'nosniff');
      // Shop pages on other origins load the widget, including pages that require CORP.
      if (name === 'widget.js') t.res.writeHeader('cross-origin-resource-policy', 'cross-origin');
      if (csp) {
        t.res.writeHeader('content-security-policy', csp);
        t.res.writeHeader('referrer-policy', 'no-referrer');
      }
      if (notModified) {
        t.res.end();
        return;
      }
      t.res.writeHeader('content-type', a.type);
      if (gzip) t.res.writeHeader('content-encoding', 'gzip');
      t.res.end(gzip ? a.gzip : a.body);
    });
  }
}
