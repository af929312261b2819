/**
 * The JetStream streams of the integration, created (or brought to the configured bounds) by every
 * member at start; the calls are idempotent. Each stream is bounded by messages, bytes and age, and
 * discards its oldest messages at a bound.
 *
 * - `sb_biz_events` (`sb.biz.*.events.>`): business events in. Work-queue retention: an event is
 *   removed once a member acknowledged it. Its duplicate window is the de-duplication of Nats-Msg-Id:
 *   server-side, so it holds whichever member handles the event and across broker restarts.
 * - `sb_out` (`sb.out.*.>`): conversation events out, kept for webhooks and any other consumer.
 * - `sb_webhook_dlq` (`sb.dlq.webhook.*`): webhook deliveries that failed every attempt.
 */
import type { JetStreamPort, StreamSpec } from '../cluster/jetstream.js';
import type { ClusterNames } from '../cluster/names.js';
import type { NodeConfig } from '../config.js';

export type StreamBounds = Pick<
  NodeConfig['integration'],
  'dedupeWindowMs' | 'streamMaxMsgs' | 'streamMaxBytes' | 'streamMaxAgeMs' | 'storage'
>;

export function integrationStreams(names: ClusterNames, b: StreamBounds): StreamSpec[] {
  const common = {
    maxAgeMs: b.streamMaxAgeMs,
    maxMsgs: b.streamMaxMsgs,
    maxBytes: b.streamMaxBytes,
    duplicateWindowMs: b.dedupeWindowMs,
    storage: b.storage,
  };
  return [
    { name: names.bizEventsStream, subjects: [names.bizEventsWildcard], retention: 'workqueue', ...common },
    { name: names.outStream, subjects: [names.outWildcard], retention: 'limits', ...common },
    {
      name: names.webhookDeadLetterStream,
      subjects: [names.webhookDeadLetterWildcard],
      retention: 'limits',
      ...common,
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
