/**
 * The JetStream streams of the integration, created (or brought to the configured bounds) by every
 * member at start; the calls are idempotent. Each stream is bounded by messages, bytes and age, and
 * discards its oldest messages at a bound.
 *
 * - `sb_biz_events` (`sb.biz.*.events.>`): business events in. Work-queue retention: an event is
 *   removed once a member acknowledged it. Its duplicate window is the de-duplication of Nats-Msg-Id:
 *   server-side, so it holds whichever member handles the event and across broker restarts.
 * - `sb_out` (`sb.out.*.>`): conversation events out, kept for webhooks and any other consumer.
 * - `sb_dlq` (`sb.dlq.>`): dead letters — webhook deliveries that failed every attempt
 *   (`sb.dlq.webhook.<tenant>`) and business events whose rule action failed for good (`sb.dlq.events.<tenant>`).
 */
import type { JetStreamPort, StreamSpec } from '../cluster/jetstream.js';
import type { ClusterNames } from '../cluster/names.js';
import type { NodeConfig } from '../config.js';

export type StreamBounds = Pick<
  NodeConfig['integration'],
  'dedupeWindowMs' | 'streamMaxMsgs' | 'streamMaxBytes' | 'streamMaxAgeMs' | 'storage' | 'eventMaxBytes'
>;

/** Largest conversation event or dead letter stored (a message event carries at most a 4,000-char body). */
export const MAX_OUT_MSG_BYTES = 256 * 1024;

export function integrationStreams(names: ClusterNames, b: StreamBounds): StreamSpec[] {
  const common = {
    maxAgeMs: b.streamMaxAgeMs,
    maxMsgs: b.streamMaxMsgs,
    maxBytes: b.streamMaxBytes,
    duplicateWindowMs: b.dedupeWindowMs,
    storage: b.storage,
  };
  return [
    {
      name: names.bizEventsStream,
      subjects: [names.bizEventsWildcard],
      retention: 'workqueue',
      ...common,
      maxMsgSize: b.eventMaxBytes,
    },
    {
      name: names.outStream,
      subjects: [names.outWildcard],
      retention: 'limits',
      ...common,
      maxMsgSize: MAX_OUT_MSG_BYTES,
    },
    {
      name: names.deadLetterStream,
      subjects: [names.deadLetterWildcard],
      retention: 'limits',
      ...common,
      // A dead letter carries the event: room for the largest one plus the record around it.
      maxMsgSize: Math.max(MAX_OUT_MSG_BYTES, b.eventMaxBytes) + 16 * 1024,
    },
  ];
}

export async function ensureIntegrationStreams(
  js: JetStreamPort,
  names: ClusterNames,
  b: StreamBounds,
): Promise<void> {
  for (const spec of integrationStreams(names, b)) await js.ensureStream(spec);
}
