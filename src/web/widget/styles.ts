/**
 * The widget's stylesheet, adopted by its shadow root (a constructed CSSStyleSheet: the host page's
 * CSS cannot reach in, ours cannot leak out, and a host CSP without 'unsafe-inline' styles still
 * allows it). `:host([data-theme=dark])` or the system's dark preference switch the palette.
 */
/**
 * The host element's own style attribute. The host lives in the shop's DOM, so the shop's CSS can
 * reach it (`* {…}`, `body > :not(main) {transform…}`); inline declarations marked important win
 * over any stylesheet, so it stays a fixed box in the corner whatever the page says.
 */
export const HOST_STYLE = [
  'all:initial',
  'position:fixed',
  'right:20px',
  'bottom:20px',
  'z-index:2147483000',
  'display:block',
  'transform:none',
  'visibility:visible',
  'opacity:1',
]
  .map((d) => `${d} !important`)
  .join(';');

export const WIDGET_CSS = `
:host{--bg:#fff;--fg:#1d2330;--muted:#6b7384;--line:#e3e6ec;--mine:#2f6fed;--mine-fg:#fff;--theirs:#f1f3f7;
 --warn:#b45309;--bad:#c0262d;--accent:#2f6fed}
.launcher,.panel{font:14px/1.45 system-ui,-apple-system,"Segoe UI","PingFang SC","Noto Sans CJK SC","Microsoft YaHei",
 sans-serif;letter-spacing:normal;text-align:left}
:host([data-theme=dark]){--bg:#161a22;--fg:#e8ebf2;--muted:#9aa3b5;--line:#2a303c;--mine:#4a82f5;
 --theirs:#232834;--warn:#f0a44b;--bad:#f06b6b;--accent:#3d6fe0}
@media (prefers-color-scheme:dark){:host([data-theme=auto]){--bg:#161a22;--fg:#e8ebf2;--muted:#9aa3b5;
 --line:#2a303c;--mine:#4a82f5;--theirs:#232834;--warn:#f0a44b;--bad:#f06b6b;--accent:#3d6fe0}}
*{box-sizing:border-box;font:inherit;color:inherit}
button{cursor:pointer;border:0;background:none;padding:0}
.launcher{width:56px;height:56px;border-radius:50%;background:var(--accent);color:#fff;display:grid;
 place-items:center;box-shadow:0 6px 20px rgba(0,0,0,.25)}
.panel{width:360px;height:520px;max-height:calc(100vh - 40px);display:flex;flex-direction:column;
 background:var(--bg);color:var(--fg);border:1px solid var(--line);border-radius:14px;overflow:hidden;
 box-shadow:0 12px 40px rgba(0,0,0,.22)}
header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--accent);color:#fff}
header .title{flex:1;font-weight:600}
header .min{color:#fff;font-size:20px;line-height:1;width:24px}
header .link{color:#fff;opacity:.9;font-size:12px;text-decoration:underline}
.dot{width:8px;height:8px;border-radius:50%;background:#f5c542}
.dot.open{background:#3ddc84}.dot.offline{background:#ff6b6b}
.status{padding:6px 14px;font-size:12px;color:var(--muted);border-bottom:1px solid var(--line)}
.status.warn{color:var(--warn)}.status.typing{color:var(--accent)}
.list{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px}
.empty{color:var(--muted);text-align:center;margin:auto 12px}
.msg{max-width:80%;display:flex;flex-direction:column}
.msg .body{padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-break:break-word;
 background:var(--theirs)}
.msg.mine{align-self:flex-end;align-items:flex-end}
.msg.mine .body{background:var(--mine);color:var(--mine-fg)}
.msg.system{align-self:center;max-width:90%}.msg.system .body{background:none;border:1px dashed var(--line)}
.msg .meta{font-size:11px;color:var(--muted);margin-top:2px}
.msg.pending .body{opacity:.6}
.msg .body.recalled{font-style:italic;opacity:.7}
.msg.refused .body{background:none;border:1px solid var(--bad);color:var(--bad);text-decoration:line-through}
.msg.refused .meta{color:var(--bad)}
.composer{display:flex;flex-wrap:wrap;gap:8px;padding:10px;border-top:1px solid var(--line)}
.composer .status{width:100%;border:0;padding:0}
textarea{flex:1;resize:none;border:1px solid var(--line);border-radius:10px;padding:8px;background:var(--bg);
 color:var(--fg);min-height:40px}
textarea:focus{outline:2px solid var(--accent);outline-offset:-1px}
.send{background:var(--accent);color:#fff;border-radius:10px;padding:0 16px;font-weight:600}
.rating{padding:14px;border-top:1px solid var(--line);text-align:center;display:flex;flex-direction:column;gap:6px}
.leave{padding:10px 14px;border-top:1px solid var(--line);display:flex;flex-direction:column;gap:6px}
.leave input,.leave textarea{font:inherit;padding:6px 8px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:inherit}
.stars{display:flex;justify-content:center;gap:6px}
.star{font-size:26px;color:#f5b301}
.link{color:var(--accent);text-decoration:underline;font-size:13px}
.thanks{color:var(--accent);font-weight:600}
`;
