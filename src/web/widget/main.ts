/**
 * The embeddable visitor widget. A shop adds one tag:
 *
 *   <script src="https://<node>/widget.js" data-tenant="acme"
 *           data-token-url="/switchboard/token" async></script>
 *
 * `data-token-url` is the shop backend's endpoint that answers `{"token": "<visitor JWT>"}` for the
 * signed-in (or anonymous) shopper, with the shop's cookies (docs/WIDGET.md, the token contract).
 * Options: `data-lang` (`zh-CN` | `en`, default the browser's), `data-theme` (`light` | `dark` |
 * `auto`), `data-title`, `data-open` (`true`: start opened). Everything renders inside a
 * shadow root, so the host page's CSS and the widget's do not touch each other.
 */
import { tokenClaims } from '../shared/connection.js';
import { html, render } from '../shared/ui.js';
import { VisitorChat } from './chat.js';
import { pickLang, WIDGET_STRINGS } from './strings.js';
import { HOST_STYLE, WIDGET_CSS } from './styles.js';
import { Widget } from './view.js';

/** Refresh the token when it has less than this left (it is checked at each (re)connect). */
export const TOKEN_MIN_LEFT_S = 60;

function boot(script: HTMLScriptElement): void {
  const src = new URL(script.src, location.href);
  const tenant = script.dataset['tenant'] ?? '';
  const tokenUrl = new URL(script.dataset['tokenUrl'] ?? '', location.href).href;
  const lang = pickLang(script.dataset['lang']);
  const t = WIDGET_STRINGS[lang];
  let token: string | undefined;

  async function getToken(fresh: boolean): Promise<string> {
    const exp = token ? Number(tokenClaims(token)['exp'] ?? 0) : 0;
    if (token && !fresh && exp - Date.now() / 1000 > TOKEN_MIN_LEFT_S) return token;
    const res = await fetch(tokenUrl, { credentials: 'include', headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
    const body = (await res.json()) as { token?: unknown };
    if (typeof body.token !== 'string') throw new Error('token endpoint gave no token');
    if (tenant && tokenClaims(body.token)['tenant'] !== tenant) throw new Error('token of another tenant');
    token = body.token;
    return token;
  }

  const host = document.createElement('switchboard-widget');
  host.setAttribute('style', HOST_STYLE);
  host.setAttribute('data-theme', script.dataset['theme'] ?? 'auto');
  host.setAttribute('lang', lang);
  const root = host.attachShadow({ mode: 'open' });
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(WIDGET_CSS);
  root.adoptedStyleSheets = [sheet];
  document.body.appendChild(host);

  const wsUrl = `${src.protocol === 'https:' ? 'wss:' : 'ws:'}//${src.host}/ws/visitor`;
  // The saved state is per visitor: the user id comes from the first token.
  void getToken(false).then(
    (first) => {
      const sub = String(tokenClaims(first)['sub'] ?? 'anon');
      const chat = new VisitorChat(wsUrl, `sb.widget.${tenant}.${sub}`, getToken);
      const title = script.dataset['title'] ?? t.title;
      render(
        html`<${Widget} chat=${chat} t=${t} title=${title} initiallyOpen=${script.dataset['open'] === 'true'} />`,
        root,
      );
    },
    (err: unknown) => console.error('switchboard widget: no token', err),
  );
}

const me = document.currentScript as HTMLScriptElement | null;
if (me) {
  if (document.body) boot(me);
  else document.addEventListener('DOMContentLoaded', () => boot(me));
}
