/**
 * The agent console at /console. Sign-in: a token in the URL fragment (`/console#token=<jwt>`,
 * where an SSO callback redirects, docs/WIDGET.md), else the one kept in this tab's
 * sessionStorage, else a form to paste one (and, when the node runs in development mode, a button
 * that asks it for a demo agent token). `?lang=zh-CN|en` and `?theme=light|dark` override the
 * browser's language and colour scheme.
 */
import { tokenClaims } from '../shared/connection.js';
import { html, render, useState } from '../shared/ui.js';
import { AgentConsole } from './agent-state.js';
import { ConsoleApp } from './app-view.js';
import { CONSOLE_STRINGS, type ConsoleStrings } from './strings.js';

const TOKEN_KEY = 'sb.console.token';
const params = new URLSearchParams(location.search);
const lang = (params.get('lang') ?? navigator.language).toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
const t: ConsoleStrings = CONSOLE_STRINGS[lang];
document.documentElement.lang = lang;
document.title = t.title;
const theme = params.get('theme');
if (theme === 'dark' || theme === 'light') document.documentElement.dataset['theme'] = theme;

function SignIn(props: { onToken: (tok: string) => void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState('');
  const demo = async () => {
    const res = await fetch('/dev/token?role=agent&sub=agent-demo&perms=pii.reveal');
    if (!res.ok) {
      setError(`/dev/token: HTTP ${res.status}`);
      return;
    }
    props.onToken(((await res.json()) as { token: string }).token);
  };
  return html`<form class="signin" onSubmit=${(e: Event) => {
    e.preventDefault();
    const tok = value.trim();
    if (tokenClaims(tok)['role'] !== 'agent') setError('not an agent token');
    else props.onToken(tok);
  }}>
    <h1>${t.title}</h1>
    <label>${t.tokenLabel}<textarea name="token" rows="5" value=${value}
      onInput=${(e: Event) => setValue((e.target as HTMLTextAreaElement).value)}></textarea></label>
    <p class="muted">${t.tokenHelp}</p>
    ${error ? html`<p class="notice">${error}</p>` : ''}
    <button type="submit" class="primary">${t.signIn}</button>
    <button type="button" onClick=${() => void demo()}>${t.demoToken}</button>
  </form>`;
}

function notify(app: AgentConsole): void {
  app.onIncoming = (c, m) => {
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    if (document.visibilityState === 'visible' && app.view.selected === c.conv) return;
    const n = new Notification(c.visitor || c.conv, { body: m.body.slice(0, 120), tag: c.conv });
    n.onclick = () => {
      window.focus();
      void app.select(c.conv);
    };
  };
}

function start(token: string | null): void {
  const root = document.getElementById('app') as HTMLElement;
  if (!token) {
    render(
      html`<${SignIn} onToken=${(tok: string) => {
        sessionStorage.setItem(TOKEN_KEY, tok);
        start(tok);
      }} />`,
      root,
    );
    return;
  }
  const app = new AgentConsole(location.origin, token);
  notify(app);
  const signOut = () => {
    app.stop();
    sessionStorage.removeItem(TOKEN_KEY);
    start(null);
  };
  render(html`<${ConsoleApp} app=${app} t=${t} onSignOut=${signOut} />`, root);
}

const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) {
  sessionStorage.setItem(TOKEN_KEY, fromHash);
  history.replaceState(null, '', location.pathname + location.search);
}
start(fromHash ?? sessionStorage.getItem(TOKEN_KEY));
