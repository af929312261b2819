/**
 * Small self-made SVG line charts for the Markdown reports (no browser, no chart library): axes with round
 * ticks, a legend, optional log scale (latency percentiles span decades), shaded x ranges (warm-up) and a
 * horizontal objective line. The output is a standalone .svg file that GitHub and editors render.
 */

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  width?: number;
  height?: number;
  /** Log-10 y axis (values ≤ 0 are left out). */
  logY?: boolean;
  /** Shaded x ranges, e.g. the warm-up. */
  bands?: readonly { from: number; to: number; label: string }[];
  /** Horizontal reference line, e.g. the p99 objective. */
  hline?: { y: number; label: string };
  /** Force the y axis to start at zero (linear only; default true). */
  yFromZero?: boolean;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const MARGIN = { top: 36, right: 16, bottom: 44, left: 64 };
const LEGEND_ROW_PX = 16;
const TARGET_TICKS = 6;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round tick values (1, 2, 5 × 10^n) covering [min, max]. */
export function niceTicks(min: number, max: number, target = TARGET_TICKS): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max <= min) max = min + 1;
  const raw = (max - min) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)));
  if ((ticks[ticks.length - 1] ?? 0) < max)
    ticks.push(Number(((ticks[ticks.length - 1] ?? 0) + step).toPrecision(12)));
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) ticks.push(m * 10 ** e);
  }
  const lo = ticks.filter((t) => t <= min).pop() ?? ticks[0] ?? 1;
  const hi = ticks.find((t) => t >= max) ?? ticks[ticks.length - 1] ?? 10;
  return ticks.filter((t) => t >= lo && t <= hi);
}

export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 1 || a === 0) return `${+v.toFixed(1)}`;
  return `${+v.toPrecision(2)}`;
}

export function lineChart(spec: ChartSpec): string {
  const width = spec.width ?? 760;
  const legendRows = Math.ceil(spec.series.length / 4);
  const height = (spec.height ?? 320) + legendRows * LEGEND_ROW_PX;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom - legendRows * LEGEND_ROW_PX;
  const logY = spec.logY === true;
  const pts = spec.series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y) && (!logY || y > 0));
  const xs = pts.map(([x]) => x);
  const ys = pts.map(([, y]) => y);
  if (spec.hline) ys.push(spec.hline.y);
  const xTicks = niceTicks(Math.min(0, ...xs), Math.max(1, ...xs));
  const yTicks = logY
    ? logTicks(Math.max(1e-3, Math.min(...ys, 1)), Math.max(1, ...ys))
    : niceTicks(spec.yFromZero === false ? Math.min(...ys, 0) : 0, Math.max(1e-9, ...ys));
  const x0 = xTicks[0] ?? 0;
  const x1 = xTicks[xTicks.length - 1] ?? 1;
  const y0 = yTicks[0] ?? 0;
  const y1 = yTicks[yTicks.length - 1] ?? 1;
  const tx = (x: number): number => MARGIN.left + ((x - x0) / (x1 - x0 || 1)) * plotW;
  const ty = (y: number): number => {
    const f = logY
      ? (Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0) || 1)
      : (y - y0) / (y1 - y0 || 1);
    return MARGIN.top + plotH - f * plotH;
  };
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(spec.title)}</text>`,
  );
  for (const b of spec.bands ?? []) {
    const a = tx(Math.max(x0, b.from));
    const w = tx(Math.min(x1, b.to)) - a;
    if (w <= 0) continue;
    out.push(
      `<rect x="${a.toFixed(1)}" y="${MARGIN.top}" width="${w.toFixed(1)}" height="${plotH}" fill="#eee"/>`,
    );
    out.push(`<text x="${(a + 4).toFixed(1)}" y="${MARGIN.top + 12}" fill="#888">${esc(b.label)}</text>`);
  }
  for (const t of yTicks) {
    const y = ty(t).toFixed(1);
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${y}" dy="4" text-anchor="end">${formatTick(t)}</text>`);
  }
  for (const t of xTicks) {
    const x = tx(t).toFixed(1);
    out.push(
      `<line x1="${x}" x2="${x}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#444"/>`,
    );
    out.push(`<text x="${x}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${formatTick(t)}</text>`);
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH + 32}" text-anchor="middle">${esc(spec.xLabel)}</text>`,
    `<text transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}${logY ? ' (log)' : ''}</text>`,
  );
  if (spec.hline && (!logY || spec.hline.y > 0)) {
    const y = ty(spec.hline.y).toFixed(1);
    out.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y}" y2="${y}" stroke="#000" stroke-dasharray="6 3"/>`,
    );
    out.push(
      `<text x="${MARGIN.left + plotW - 4}" y="${y}" dy="-4" text-anchor="end">${esc(spec.hline.label)}</text>`,
    );
  }
  spec.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const path = s.points
      .filter(([, y]) => Number.isFinite(y) && (!logY || y > 0))
      .map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${tx(x).toFixed(1)},${ty(y).toFixed(1)}`)
      .join('');
    if (path !== '') {
      const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
      out.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="1.8"${dash}/>`);
      if (s.points.length <= 12) {
        for (const [x, y] of s.points) {
          if (!logY || y > 0)
            out.push(`<circle cx="${tx(x).toFixed(1)}" cy="${ty(y).toFixed(1)}" r="2.5" fill="${color}"/>`);
        }
      }
    }
    const lx = MARGIN.left + (i % 4) * (plotW / 4);
    const ly = height - 10 - (legendRows - 1 - Math.floor(i / 4)) * LEGEND_ROW_PX;
    out.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2.5"/>`,
    );
    out.push(`<text x="${lx + 22}" y="${ly}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
