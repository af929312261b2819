/**
 * The support-desk settings of a tenant (issue #17 items 5-7): no-reply reassignment, business hours
 * with the leave-a-message form, and bot-first routing. They live in the tenants file's `desk`
 * section (src/tenants.ts, example in deploy/tenants.example.yaml), are validated here, and are read
 * through `receptionSettingsOf`, which fills in the defaults. Every list and size has a bound below.
 */
import { z } from 'zod';

/** Weekly schedule entries per tenant. */
export const MAX_SCHEDULE_ENTRIES = 32;
/** Holidays (closed all day) per tenant. */
export const MAX_HOLIDAYS = 366;
export const MAX_CLOSED_MESSAGE_CHARS = 1000;
/** Bounds of the tenant-set no-reply time (seconds). */
export const MIN_REASSIGN_S = 1;
export const MAX_REASSIGN_S = 86_400;
export const DEFAULT_LEFT_MESSAGE_MAX_CHARS = 2000;
export const MAX_LEFT_MESSAGE_MAX_CHARS = 4000;
export const DEFAULT_LEFT_MESSAGES_MAX_STORED = 1000;
export const MAX_LEFT_MESSAGES_MAX_STORED = 100_000;
/** Contact fields of a left message (name, email). */
export const MAX_CONTACT_CHARS = 200;
export const DEFAULT_BOT_TIMEOUT_MS = 3000;
export const MIN_BOT_TIMEOUT_MS = 100;
export const MAX_BOT_TIMEOUT_MS = 30_000;
export const DEFAULT_BOT_MAX_REPLY_CHARS = 2000;
export const MAX_BOT_MAX_REPLY_CHARS = 4000;
/** A bot's summary for the agent. */
export const MAX_BOT_SUMMARY_CHARS = 2000;
/** The raw NATS reply of a bot (JSON or msgpack), before any field is read. */
export const MAX_BOT_REPLY_BYTES = 64 * 1024;
export const DEFAULT_CLOSED_MESSAGE =
  'We are closed right now. Leave us a message and we will answer when we are back.';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const HHMM = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'must be HH:MM (00:00 to 24:00)')
  .transform((s) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5)));
const DATE = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, 'must be a date YYYY-MM-DD');

/** An IANA time zone Intl knows (the runtime's ICU data decides). */
const TIME_ZONE = z
  .string()
  .min(1)
  .max(64)
  .refine(
    (tz) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    },
    { message: 'must be an IANA time zone (Europe/Berlin, Asia/Shanghai, UTC...)' },
  );

const scheduleEntry = z
  .strictObject({
    days: z.array(z.enum(WEEKDAYS)).min(1).max(7),
    /** Local time the desk opens, HH:MM. */
    open: HHMM,
    /** Local time it closes, HH:MM (24:00 = midnight); after `open` (split a night shift in two). */
    close: HHMM,
  })
  .refine((e) => e.close > e.open, { message: 'close must be after open' });

export const RECEPTION_SECTION = z.strictObject({
  /**
   * Seconds an assigned agent has to answer a waiting visitor before the conversation goes back to
   * the front of the queue for another agent. Absent: never.
   */
  noReplyReassignS: z.number().int().min(MIN_REASSIGN_S).max(MAX_REASSIGN_S).optional(),
  /** Business hours; absent: always open. */
  hours: z
    .strictObject({
      timeZone: TIME_ZONE,
      weekly: z.array(scheduleEntry).max(MAX_SCHEDULE_ENTRIES),
      /** Local dates the desk stays closed all day. */
      holidays: z.array(DATE).max(MAX_HOLIDAYS).optional(),
      /** The automatic message a visitor gets outside business hours. */
      closedMessage: z.string().min(1).max(MAX_CLOSED_MESSAGE_CHARS).optional(),
      leaveMessage: z
        .strictObject({
          /** Longest left message (characters). */
          maxChars: z.number().int().min(1).max(MAX_LEFT_MESSAGE_MAX_CHARS).optional(),
          /** Left messages stored per tenant until the desk opens; more are refused `busy`. */
          maxStored: z.number().int().min(1).max(MAX_LEFT_MESSAGES_MAX_STORED).optional(),
        })
        .optional(),
    })
    .optional(),
  /** Bot first: new conversations go to a bot over NATS request-reply (docs/INTEGRATION.md). */
  bot: z
    .strictObject({
      /** Subject suffix under sb.biz.<tenant>. (default `bot`). */
      subject: z
        .string()
        .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be dot-separated tokens without wildcards')
        .max(128)
        .optional(),
      /** The sender id of the bot's messages. */
      name: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -')
        .optional(),
      timeoutMs: z.number().int().min(MIN_BOT_TIMEOUT_MS).max(MAX_BOT_TIMEOUT_MS).optional(),
      maxReplyChars: z.number().int().min(1).max(MAX_BOT_MAX_REPLY_CHARS).optional(),
    })
    .optional(),
});

export type ReceptionSection = z.infer<typeof RECEPTION_SECTION>;

export interface ScheduleEntry {
  readonly days: readonly Weekday[];
  /** Minutes after local midnight. */
  readonly open: number;
  readonly close: number;
}

export interface HoursSettings {
  readonly timeZone: string;
  readonly weekly: readonly ScheduleEntry[];
  readonly holidays: ReadonlySet<string>;
  readonly closedMessage: string;
  readonly leaveMaxChars: number;
  readonly leaveMaxStored: number;
}

export interface BotSettings {
  readonly subject: string;
  readonly name: string;
  readonly timeoutMs: number;
  readonly maxReplyChars: number;
}

/** A tenant's desk settings with defaults filled in. */
export interface ReceptionSettings {
  /** 0: no reassignment. */
  readonly noReplyReassignMs: number;
  readonly hours: HoursSettings | null;
  readonly bot: BotSettings | null;
}

export const NO_RECEPTION: ReceptionSettings = Object.freeze({
  noReplyReassignMs: 0,
  hours: null,
  bot: null,
});

const cache = new WeakMap<object, ReceptionSettings>();

/** The settings of a tenant's parsed `reception` section (undefined: none). Derived once per section object. */
export function receptionSettingsOf(section: ReceptionSection | undefined): ReceptionSettings {
  if (section === undefined) return NO_RECEPTION;
  const hit = cache.get(section);
  if (hit) return hit;
  const h = section.hours;
  const b = section.bot;
  const out: ReceptionSettings = Object.freeze({
    noReplyReassignMs: (section.noReplyReassignS ?? 0) * 1000,
    hours: h
      ? Object.freeze({
          timeZone: h.timeZone,
          weekly: Object.freeze(h.weekly.map((e) => Object.freeze({ ...e, days: Object.freeze(e.days) }))),
          holidays: new Set(h.holidays ?? []),
          closedMessage: h.closedMessage ?? DEFAULT_CLOSED_MESSAGE,
          leaveMaxChars: h.leaveMessage?.maxChars ?? DEFAULT_LEFT_MESSAGE_MAX_CHARS,
          leaveMaxStored: h.leaveMessage?.maxStored ?? DEFAULT_LEFT_MESSAGES_MAX_STORED,
        })
      : null,
    bot: b
      ? Object.freeze({
          subject: b.subject ?? 'bot',
          name: b.name ?? 'bot',
          timeoutMs: b.timeoutMs ?? DEFAULT_BOT_TIMEOUT_MS,
          maxReplyChars: b.maxReplyChars ?? DEFAULT_BOT_MAX_REPLY_CHARS,
        })
      : null,
  });
  cache.set(section, out);
  return out;
}
