/**
 * Parsing and formatting of the bench's command-line values: durations ("30s", "2m", "500ms"), counts
 * ("100k"), comma lists. The parsers throw an Error with a short message that the CLI shows as is, so a
 * bad value fails before anything starts.
 */

const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const MS_PER_UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const COUNT_PATTERN = /^(\d+(?:\.\d+)?)(k|m)?$/i;

/** "30s" / "2m" / "500ms" / "1.5h" / a bare number of seconds → milliseconds. */
export function parseDurationMs(value: string): number {
  const m = DURATION_PATTERN.exec(value.trim());
  if (!m) throw new Error('must be a duration such as 500ms, 30s, 2m');
  return Math.round(Number(m[1]) * (MS_PER_UNIT[m[2] ?? 's'] ?? 1000));
}

/** "100000" / "100k" / "1.2m" → a non-negative integer. */
export function parseCount(value: string): number {
  const m = COUNT_PATTERN.exec(value.trim());
  if (!m) throw new Error('must be a count such as 500, 100k');
  const factor = m[2] === undefined ? 1 : m[2].toLowerCase() === 'k' ? 1_000 : 1_000_000;
  const n = Math.round(Number(m[1]) * factor);
  if (!Number.isSafeInteger(n)) throw new Error('is too large');
  return n;
}

export function parsePositiveCount(value: string): number {
  const n = parseCount(value);
  if (n === 0) throw new Error('must be positive');
  return n;
}

/** A positive number (rates may be fractional, e.g. 0.5 msg/s). */
export function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error('must be a positive number');
  return n;
}

export function parsePercent(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new Error('must be from 0 to 100');
  return n;
}

/** "1,3" → [1, 3] (positive integers). */
export function parseCountList(value: string): number[] {
  const list = value.split(',').map((s) => parsePositiveCount(s));
  if (list.length === 0) throw new Error('must list at least one count');
  return list;
}

export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (abs >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (abs >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${Math.round(bytes)} B`;
}

export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

export function formatRate(perSecond: number): string {
  return perSecond >= 100 ? `${Math.round(perSecond)}` : perSecond.toFixed(1);
}

/** A file-name-safe UTC timestamp: 20260501T054143Z. */
export function fileTimestamp(d = new Date()): string {
  return d
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/[-:]/g, '');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
