/**
 * The console's frame: the top bar (connection, status and capacity, notifications), the waiting
 * queue and the agent's conversations with unread counts, the open conversation, and the
 * business-context panel with actions. Keyboard shortcuts are bound here.
 */
import { html, useEffect, useState } from '../shared/ui.js';
import type { AgentConsole, Conv } from './agent-state.js';
import { ConversationView } from './conversation-view.js';
import type { ConsoleStrings } from './strings.js';

function ContextPanel(props: { app: AgentConsole; c: Conv; t: ConsoleStrings }) {
  const { app, c, t } = props;
  const [name, setName] = useState('');
  const [args, setArgs] = useState('{}');
  const items = (c.context?.['items'] ?? {}) as Record<string, unknown>;
  const missing = (c.context?.['missing'] ?? []) as { kind: string; reason: string }[];
  return html`<aside class="context">
    ${
      c.handoff
        ? html`<h3>${t.handoff}</h3><div class="result">${String(c.handoff['summary'] ?? t.none)} <span class="muted">(${String(c.handoff['by'])})</span></div>`
        : ''
    }
    <h3>${t.context} <button class="small" onClick=${() => void app.context(c.conv)}>${t.refresh}</button></h3>
    ${Object.entries(items).map(
      ([kind, v]) =>
        html`<details open><summary>${kind}</summary><pre>${JSON.stringify(v, null, 1).slice(0, 2000)}</pre></details>`,
    )}
    ${missing.map((m) => html`<div class="badge warn">${m.kind}: ${m.reason}</div>`)}
    ${Object.keys(items).length === 0 && missing.length === 0 ? html`<div class="muted">${t.none}</div>` : ''}
    <h3>${t.actions}</h3>
    <form class="action" onSubmit=${(e: Event) => {
      e.preventDefault();
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(args || '{}') as Record<string, unknown>;
      } catch {
        return;
      }
      if (name.trim()) void app.action(c.conv, name.trim(), parsed);
    }}>
      <input placeholder=${t.actionName} value=${name} onInput=${(e: Event) => setName((e.target as HTMLInputElement).value)} />
      <input value=${args} onInput=${(e: Event) => setArgs((e.target as HTMLInputElement).value)} />
      <button type="submit">${t.run}</button>
    </form>
    ${c.results.map(
      (r) =>
        html`<div class=${`result ${r['ok'] ? 'ok' : 'bad'}`}><b>${String(r['name'])}</b> ${String(r['message'] ?? '')}</div>`,
    )}
  </aside>`;
}

function ConvList(props: { app: AgentConsole; t: ConsoleStrings }) {
  const { app, t } = props;
  const { view } = app;
  const convs = [...view.convs.values()];
  return html`<nav class="sidebar">
    <h3>${t.waiting} <span class="count">${view.queue.length}</span></h3>
    <ul class="queue">
      ${view.queue.length === 0 ? html`<li class="muted">${t.none}</li>` : ''}
      ${view.queue.slice(0, 20).map(
        (q) => html`<li key=${q.conv}><span>#${q.position} ${q.visitor ?? ''} <small>${q.conv}</small></span>
          <button class="small" onClick=${() => void app.accept(q.conv)}>${t.accept}</button></li>`,
      )}
    </ul>
    <h3>${t.mine} <span class="count">${convs.filter((c) => c.status === 'assigned').length}</span></h3>
    <ul class="convs">
      ${convs.map((c) => {
        const unread = c.status === 'assigned' ? Math.max(0, c.lastSeq - c.readSeq) : 0;
        return html`<li key=${c.conv} class=${`${c.conv === view.selected ? 'active' : ''} ${c.status}`}
          onClick=${() => void app.select(c.conv)}>
          <span class="name">${c.visitor || c.conv}<small>${c.conv}</small></span>
          ${unread > 0 ? html`<span class="unread">${unread}</span>` : ''}
        </li>`;
      })}
    </ul>
  </nav>`;
}

export function ConsoleApp(props: { app: AgentConsole; t: ConsoleStrings; onSignOut: () => void }) {
  const { app, t } = props;
  const [, setTick] = useState(0);
  const redraw = () => setTick((n) => n + 1);
  useEffect(() => {
    // At most one redraw per animation frame, however many frames arrive (a burst of messages).
    let queued = false;
    const off = app.subscribe(() => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        redraw();
      });
    });
    // The console's connection starts before this effect runs: draw what changed in between (a welcome).
    redraw();
    return off;
  }, [app]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!e.altKey) return;
      const ids = [...app.view.convs.keys()];
      const at = app.view.selected ? ids.indexOf(app.view.selected) : -1;
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        const next = ids[(at + (e.key === 'ArrowDown' ? 1 : ids.length - 1)) % Math.max(1, ids.length)];
        if (next) void app.select(next);
      } else if (e.key === 'a' || e.key === 'A') {
        const first = app.view.queue[0];
        if (first) void app.accept(first.conv);
      } else if (e.key === 'k' || e.key === 'K') document.getElementById('reply')?.focus();
      else if ((e.key === 'c' || e.key === 'C') && app.view.selected) void app.close(app.view.selected);
      else return;
      e.preventDefault();
    };
    const onVisible = () => {
      if (document.visibilityState === 'visible' && app.view.selected) app.markRead(app.view.selected);
    };
    document.addEventListener('keydown', onKey);
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [app]);
  const { view } = app;
  const c = view.selected ? view.convs.get(view.selected) : undefined;
  const [cap, setCap] = useState('');
  return html`<div class="shell">
    <header class="top" data-status=${view.status}>
      <span class=${`dot ${view.state}`} title=${view.state}></span>
      <strong>${t.title}</strong>
      <span class="me">${view.user}</span>
      <label>${t.status}
        <select value=${view.status} onChange=${(e: Event) => void app.setStatus((e.target as HTMLSelectElement).value)}>
          <option value="online">${t.online}</option><option value="away">${t.away}</option>
          <option value="offline">${t.offline}</option>
        </select></label>
      <form class="cap" onSubmit=${(e: Event) => {
        e.preventDefault();
        const n = Number(cap);
        if (Number.isInteger(n) && n >= 0) void app.setStatus(view.status, n);
      }}><label>${t.capacity} <input type="number" min="0" max="50" placeholder=${String(view.capacity ?? '')}
        value=${cap} onInput=${(e: Event) => setCap((e.target as HTMLInputElement).value)} /></label></form>
      <span class="load">${t.load}: ${view.load ?? '–'}/${view.capacity ?? '–'}</span>
      <span class="spacer"></span>
      ${
        'Notification' in window && Notification.permission === 'default'
          ? html`<button class="small" onClick=${() => void Notification.requestPermission().then(redraw)}>${t.notify}</button>`
          : ''
      }
      <button class="small" onClick=${props.onSignOut}>${t.signOut}</button>
    </header>
    ${view.notice ? html`<div class="notice" role="status">${view.notice}</div>` : ''}
    <main class="columns">
      <${ConvList} app=${app} t=${t} />
      ${c ? html`<${ConversationView} app=${app} c=${c} t=${t} />` : html`<section class="conversation empty">${t.select}</section>`}
      ${c ? html`<${ContextPanel} app=${app} c=${c} t=${t} />` : html`<aside class="context"></aside>`}
    </main>
    <footer class="shortcuts">${t.shortcuts}</footer>
  </div>`;
}
