/**
 * The middle column: one conversation's messages (a window of the newest, paged backwards through
 * the history API), masked PII with reveal buttons, typing and read receipts, the reply box, and
 * the transfer / close controls.
 */
import { html, useEffect, useRef, useState } from '../shared/ui.js';
import type { AgentConsole, Conv, Msg } from './agent-state.js';
import type { ConsoleStrings } from './strings.js';

/** Messages rendered at first; each "older" click renders (and if needed loads) this many more. */
export const RENDER_PAGE = 50;
const MASKED = /\S*\*{2,}\S*/g;

function Body(props: { app: AgentConsole; c: Conv; m: Msg; t: ConsoleStrings }) {
  const { app, c, m, t } = props;
  if (m.role !== 'visitor' || !m.body.includes('**')) return html`<span>${m.body}</span>`;
  const parts: unknown[] = [];
  let last = 0;
  let i = 0;
  for (const match of m.body.matchAll(MASKED)) {
    const index = i++;
    const at = match.index ?? 0;
    parts.push(m.body.slice(last, at));
    const shown = c.revealed[`${m.seq}:${index}`];
    parts.push(
      shown !== undefined
        ? html`<mark class="revealed">${shown}</mark>`
        : html`<span class="masked">${match[0]}</span>${
            app.view.canReveal
              ? html`<button class="reveal" onClick=${() => void app.reveal(c.conv, m.seq, index)}>${t.reveal}</button>`
              : ''
          }`,
    );
    last = at + match[0].length;
  }
  parts.push(m.body.slice(last));
  return html`<span>${parts}</span>`;
}

function Composer(props: { app: AgentConsole; c: Conv; t: ConsoleStrings }) {
  const { app, c, t } = props;
  const [text, setText] = useState('');
  const composing = useRef(false);
  const submit = () => {
    if (app.send(c.conv, text)) setText('');
  };
  return html`<form class="composer" onSubmit=${(e: Event) => {
    e.preventDefault();
    submit();
  }}>
    <textarea id="reply" rows="3" placeholder=${t.placeholder} value=${text}
      oncompositionstart=${() => {
        composing.current = true;
      }}
      oncompositionend=${() => {
        composing.current = false;
      }}
      onInput=${(e: Event) => {
        setText((e.target as HTMLTextAreaElement).value);
        app.typing(c.conv);
      }}
      onKeyDown=${(e: KeyboardEvent) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !composing.current) {
          e.preventDefault();
          submit();
        }
      }}></textarea>
    <button type="submit" class="primary">${t.send}</button>
  </form>`;
}

export function ConversationView(props: { app: AgentConsole; c: Conv; t: ConsoleStrings }) {
  const { app, c, t } = props;
  const [shown, setShown] = useState(RENDER_PAGE);
  const [to, setTo] = useState('');
  const list = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  // Reset the window when another conversation is shown.
  useEffect(() => {
    setShown(RENDER_PAGE);
    stick.current = true;
  }, [c.conv]);
  useEffect(() => {
    if (list.current && stick.current) list.current.scrollTop = list.current.scrollHeight;
  });
  const visible = c.messages.slice(-shown);
  const canOlder = c.messages.length > shown || c.older !== null;
  const older = async () => {
    stick.current = false;
    if (c.messages.length <= shown) await app.loadOlder(c.conv);
    setShown((n) => n + RENDER_PAGE);
  };
  const typing = c.visitorTypingUntil > Date.now();
  const open = c.status === 'assigned';
  return html`<section class="conversation">
    <header>
      <div class="who"><strong>${c.visitor || c.conv}</strong> <small>${c.conv}</small>
        ${!open ? html`<span class="badge muted">${c.status === 'closed' ? t.closed : t.gone}</span>` : ''}</div>
      ${
        open
          ? html`<form class="transfer" onSubmit=${(e: Event) => {
              e.preventDefault();
              const v = to.trim();
              if (!v) return;
              void app.transfer(c.conv, v.startsWith('skill:') ? { skill: v.slice(6) } : { agent: v });
              setTo('');
            }}>
            <input placeholder=${t.transferTo} value=${to} onInput=${(e: Event) => setTo((e.target as HTMLInputElement).value)} />
            <button type="submit">${t.transfer}</button>
          </form>
          <button class="danger" onClick=${() => void app.close(c.conv)}>${t.close}</button>`
          : ''
      }
    </header>
    <div class="messages" ref=${list} onScroll=${(e: Event) => {
      const el = e.target as HTMLDivElement;
      stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    }}>
      ${canOlder ? html`<button class="older" onClick=${() => void older()}>${t.older}</button>` : ''}
      ${visible
        .filter((m) => m.change === undefined)
        .map(
          (
            m,
          ) => html`<div key=${m.seq} class=${`msg ${m.role}${m.internal ? ' note' : ''}`} data-seq=${m.seq}>
          <div class="bubble">${m.recalled ? html`<i class="recalled">${t.recalled}</i>` : html`<${Body} app=${app} c=${c} m=${m} t=${t} />`}
            ${m.card ? html`<div class="card"><b>${m.card.title}</b>${Object.entries(m.card.fields ?? {}).map(([k, v]) => html`<div>${k}: ${v}</div>`)}</div>` : ''}
          </div>
          <div class="meta">#${m.seq} · ${new Date(m.ts).toLocaleTimeString()}
            ${m.review ? html` · <span class="badge warn">${t.review}</span>` : ''}
            ${m.internal ? html` · <span class="badge">${t.note}</span>` : ''}
            ${m.edited && !m.recalled ? html` · ${t.edited}` : ''}
            ${m.role === 'agent' && m.seq <= c.visitorRead ? html` · <span class="read">${t.readBy}</span>` : ''}</div>
        </div>`,
        )}
    </div>
    <div class="typing">${typing ? t.typing : ''}</div>
    ${open ? html`<${Composer} app=${app} c=${c} t=${t} />` : ''}
  </section>`;
}
