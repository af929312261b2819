/** The widget's components: a launcher button and the chat panel, rendered into its shadow root. */
import { html, useEffect, useRef, useState } from '../shared/ui.js';
import type { ShownMessage, VisitorChat } from './chat.js';
import type { WidgetStrings } from './strings.js';

export interface WidgetProps {
  chat: VisitorChat;
  t: WidgetStrings;
  title: string;
  initiallyOpen: boolean;
}

const time = (ts: number) => new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

function Bubble(props: { m: ShownMessage; read: boolean; t: WidgetStrings }) {
  const { m, read, t } = props;
  return html`<div class=${`msg ${m.mine ? 'mine' : 'theirs'} ${m.role === 'system' ? 'system' : ''}`}
    data-seq=${m.seq}>
    ${m.recalled ? html`<div class="body recalled">${t.recalled}</div>` : html`<div class="body">${m.body}</div>`}
    <div class="meta">${time(m.ts)}${m.edited && !m.recalled ? ` · ${t.edited}` : ''}${m.mine && read ? html` · <span class="read">${t.read}</span>` : ''}</div>
  </div>`;
}

function Status(props: { chat: VisitorChat; t: WidgetStrings }) {
  const { view } = props.chat;
  const { t } = props;
  if (view.state === 'connecting') return html`<div class="status">${t.connecting}</div>`;
  if (view.state === 'offline') return html`<div class="status warn">${t.offline}</div>`;
  if (view.agentTyping) return html`<div class="status typing">${t.typing}</div>`;
  if (view.position !== null) return html`<div class="status queue">${t.queue(view.position)}</div>`;
  if (view.agent) return html`<div class="status">${t.assigned(view.agent)}</div>`;
  // With the tenant's bot: the visitor may ask for a person (the `handoff` frame).
  if (view.messages.at(-1)?.role === 'bot')
    return html`<div class="status"><button class="link person" onClick=${() => props.chat.askPerson()}>${t.person}</button></div>`;
  return null;
}

/** The leave-a-message form of a closed desk (`desk_closed`). */
function LeaveForm(props: { chat: VisitorChat; t: WidgetStrings }) {
  const { chat, t } = props;
  const desk = chat.view.deskClosed;
  const [body, setBody] = useState('');
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [error, setError] = useState('');
  if (!desk) return null;
  if (chat.view.left) return html`<div class="leave"><div class="thanks">${t.leftThanks}</div></div>`;
  const value = (set: (v: string) => void) => (e: Event) => set((e.target as HTMLInputElement).value);
  return html`<form class="leave" onSubmit=${(e: Event) => {
    e.preventDefault();
    if (!body.trim()) return;
    chat.leave(body, name, email).catch((err: unknown) => setError(String((err as Error).message ?? err)));
  }}>
    <div>${desk.message}</div>
    <input placeholder=${t.name} aria-label=${t.name} maxlength="200" value=${name} onInput=${value(setName)} />
    <input placeholder=${t.email} aria-label=${t.email} maxlength="200" value=${email} onInput=${value(setEmail)} />
    <textarea rows="3" placeholder=${t.leaveMessage} aria-label=${t.leaveMessage} maxlength=${desk.maxChars}
      value=${body} onInput=${value(setBody)}></textarea>
    ${error ? html`<div class="status warn">${error}</div>` : ''}
    <button type="submit" class="send">${t.leaveSend}</button>
  </form>`;
}

function Rating(props: { chat: VisitorChat; t: WidgetStrings }) {
  const { chat, t } = props;
  return html`<div class="rating">
    <div>${t.closed}</div>
    ${
      chat.view.rated
        ? html`<div class="thanks">${t.thanks}</div>`
        : html`<div>${t.rate}</div>
          <div class="stars">${[1, 2, 3, 4, 5].map(
            (n) =>
              html`<button class="star" aria-label=${String(n)} onClick=${() => void chat.rate(n)}>★</button>`,
          )}</div>`
    }
    <button class="link" onClick=${() => chat.startNew()}>${t.newChat}</button>
  </div>`;
}

function Composer(props: { chat: VisitorChat; t: WidgetStrings }) {
  const { chat, t } = props;
  const [text, setText] = useState('');
  const [full, setFull] = useState(false);
  // IME composition (Chinese pinyin input): Enter confirms the candidate, it must not send. The
  // handlers are written in lower case: preact only maps names the element has as `on…` properties,
  // and elements have no `oncompositionstart`.
  const composing = useRef(false);
  const submit = () => {
    if (!text.trim()) return;
    const ok = chat.send(text);
    setFull(!ok);
    if (ok) setText('');
  };
  return html`<form class="composer" onSubmit=${(e: Event) => {
    e.preventDefault();
    submit();
  }}>
    ${full ? html`<div class="status warn">${t.tooMany}</div>` : ''}
    <textarea rows="2" placeholder=${t.placeholder} value=${text} aria-label=${t.placeholder}
      oncompositionstart=${() => {
        composing.current = true;
      }}
      oncompositionend=${() => {
        composing.current = false;
      }}
      onInput=${(e: Event) => {
        setText((e.target as HTMLTextAreaElement).value);
        chat.typing();
      }}
      onKeyDown=${(e: KeyboardEvent) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !composing.current) {
          e.preventDefault();
          submit();
        }
      }}></textarea>
    <button type="submit" class="send">${t.send}</button>
  </form>`;
}

export function Widget(props: WidgetProps) {
  const { chat, t } = props;
  const [, setTick] = useState(0);
  const redraw = () => setTick((n) => n + 1);
  const [open, setOpen] = useState(props.initiallyOpen);
  const list = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const off = chat.subscribe(redraw);
    // The chat's connection starts before this effect runs (Preact runs it after the next frame): a state
    // reached in between, such as a fast `welcome`, had no listener, so draw it now. Without this the dot
    // stayed "connecting" for a visitor with nothing else to show (the CI failures in browser tests).
    redraw();
    return off;
  }, [chat]);
  const { view } = chat;
  useEffect(() => {
    if (list.current) list.current.scrollTop = list.current.scrollHeight;
    if (open && document.visibilityState === 'visible') chat.markRead();
  });
  if (!open) {
    return html`<button class="launcher" aria-label=${t.open} onClick=${() => setOpen(true)}>
      <svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><path fill="currentColor"
        d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg></button>`;
  }
  const shownCmids = new Set(view.messages.map((m) => m.cmid));
  return html`<section class="panel" role="dialog" aria-label=${props.title}>
    <header>
      <span class=${`dot ${view.state}`}></span>
      <span class="title">${props.title}</span>
      ${
        view.conv && !view.closed && view.messages.length > 0
          ? html`<button class="link end" onClick=${() => chat.close()}>${t.endChat}</button>`
          : ''
      }
      <button class="min" aria-label=${t.close} onClick=${() => setOpen(false)}>–</button>
    </header>
    <${Status} chat=${chat} t=${t} />
    <div class="list" ref=${list}>
      ${view.messages.length === 0 && view.unsent.length === 0 ? html`<div class="empty">${t.empty}</div>` : ''}
      ${view.messages.map((m) => html`<${Bubble} key=${m.seq} m=${m} read=${m.seq <= view.agentRead} t=${t} />`)}
      ${view.unsent
        .filter((u) => !shownCmids.has(u.cmid))
        .map(
          (u) => html`<div class="msg mine pending" key=${u.cmid}>
            <div class="body">${u.body}</div><div class="meta">${t.sending}</div></div>`,
        )}
      ${view.refused.map(
        (r) => html`<div class="msg mine refused" key=${`x${r.cmid}`}>
          <div class="body">${r.body}</div>
          <div class="meta">${r.code === 'blocked' ? t.blocked : `${t.failed} (${r.code})`}</div></div>`,
      )}
    </div>
    ${view.deskClosed && !view.closed ? html`<${LeaveForm} chat=${chat} t=${t} />` : ''}
    ${view.closed ? html`<${Rating} chat=${chat} t=${t} />` : html`<${Composer} chat=${chat} t=${t} />`}
  </section>`;
}
