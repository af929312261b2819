/** Structured logs (pino) on stderr, so stdout stays free for a CLI's own output. */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(opts: { logLevel: string; nodeId?: string }): Logger {
  return pino({ level: opts.logLevel, base: opts.nodeId ? { node: opts.nodeId } : {} }, pino.destination(2));
}
