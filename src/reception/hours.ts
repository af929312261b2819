/**
 * Business hours: is the desk open at an instant, and when does it open next. Local dates, weekdays
 * and wall-clock minutes come from Intl.DateTimeFormat in the tenant's IANA time zone; the one step
 * Intl does not offer directly (a local wall time to an instant, for `nextOpening`) uses the zone's
 * UTC offset as Intl reports it (`timeZoneName: 'longOffset'`), asked twice so a daylight-saving
 * change between the guess and the answer is followed. No offset table of our own.
 */
import type { HoursSettings, Weekday } from './settings.js';

const WEEKDAY_OF: Record<string, Weekday> = {
  Mon: 'mon',
  Tue: 'tue',
  Wed: 'wed',
  Thu: 'thu',
  Fri: 'fri',
  Sat: 'sat',
  Sun: 'sun',
};
/** Formatters per time zone (building one is slow); bounded by the zones in use, capped anyway. */
const MAX_FORMATTERS = 1024;
const formatters = new Map<string, { parts: Intl.DateTimeFormat; offset: Intl.DateTimeFormat }>();

function formattersOf(timeZone: string) {
  let f = formatters.get(timeZone);
  if (!f) {
    if (formatters.size >= MAX_FORMATTERS) formatters.clear();
    f = {
      parts: new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        weekday: 'short',
        hour: '2-digit',
        minute: '2-digit',
      }),
      offset: new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' }),
    };
    formatters.set(timeZone, f);
  }
  return f;
}

export interface LocalTime {
  /** YYYY-MM-DD in the zone. */
  date: string;
  weekday: Weekday;
  /** Minutes after local midnight. */
  minute: number;
}

/** The local date, weekday and minute of instant `ms` in `timeZone`. */
export function localTime(timeZone: string, ms: number): LocalTime {
  const p: Record<string, string> = {};
  for (const part of formattersOf(timeZone).parts.formatToParts(ms)) p[part.type] = part.value;
  return {
    date: `${p['year']}-${p['month']}-${p['day']}`,
    weekday: WEEKDAY_OF[p['weekday'] ?? ''] ?? 'mon',
    minute: Number(p['hour']) * 60 + Number(p['minute']),
  };
}

/** Whether the desk is open at `ms`: not a holiday, and inside one of the day's entries [open, close). */
export function isOpen(hours: HoursSettings, ms: number): boolean {
  const t = localTime(hours.timeZone, ms);
  if (hours.holidays.has(t.date)) return false;
  return hours.weekly.some((e) => e.days.includes(t.weekday) && t.minute >= e.open && t.minute < e.close);
}

/** The zone's offset from UTC at `ms` (ms), as Intl names it ("GMT+05:30", "GMT"). */
function offsetMs(timeZone: string, ms: number): number {
  const name = formattersOf(timeZone)
    .offset.formatToParts(ms)
    .find((p) => p.type === 'timeZoneName')?.value;
  const m = /GMT([+-])(\d{2}):(\d{2})/.exec(name ?? '');
  if (!m) return 0;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000;
}

/** The instant of local wall time `minute` on local date `date` in `timeZone`. */
export function zonedInstant(timeZone: string, date: string, minute: number): number {
  const [y, mo, d] = date.split('-').map(Number) as [number, number, number];
  const wall = Date.UTC(y, mo - 1, d, 0, minute);
  let at = wall - offsetMs(timeZone, wall);
  at = wall - offsetMs(timeZone, at);
  return at;
}

/** How many local days ahead nextOpening looks (a year of holidays plus a week). */
const LOOKAHEAD_DAYS = 373;

/**
 * The next instant after `ms` at which the desk opens (the start of an entry on a day that is not a
 * holiday), or null when none within a year.
 */
export function nextOpening(hours: HoursSettings, ms: number): number | null {
  if (hours.weekly.length === 0) return null;
  // Local noon of today, stepped by 24 h: always inside the next local day, whatever DST does.
  const today = localTime(hours.timeZone, ms);
  const noon = zonedInstant(hours.timeZone, today.date, 12 * 60);
  for (let d = 0; d < LOOKAHEAD_DAYS; d++) {
    const t = localTime(hours.timeZone, noon + d * 86_400_000);
    if (hours.holidays.has(t.date)) continue;
    const opens = hours.weekly
      .filter((e) => e.days.includes(t.weekday))
      .map((e) => e.open)
      .sort((a, b) => a - b);
    for (const open of opens) {
      const at = zonedInstant(hours.timeZone, t.date, open);
      if (at > ms) return at;
    }
  }
  return null;
}
