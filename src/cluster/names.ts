/**
 * The NATS names of one Switchboard cluster. The default cluster uses the names of DESIGN.md
 * (`sb.shard.<n>`, buckets `sb_members`...; users are reached through `sb.deliver.<member>`, not a
 * subject per user: docs/ARCHITECTURE.md); a named cluster
 * (SB_CLUSTER=x) prefixes them (`sb-x.shard.<n>`, bucket `sb-x_members`), so several clusters — or
 * test runs and bench runs — can share one NATS deployment without joining each other.
 */
export const DEFAULT_CLUSTER = 'default';

export interface ClusterNames {
  readonly cluster: string;
  readonly membersBucket: string;
  readonly shardsBucket: string;
  readonly locksBucket: string;
  shardSubject(shard: number): string;
  /** A member's inbox for coalesced requests and replies (src/routing/member-link.ts). */
  memberSubject(member: string): string;
  /** A member's delivery inbox: presence and pushed frames (src/presence/link.ts). */
  deliverySubject(member: string): string;
  /** Business events in: `sb.biz.<tenant>.events.<type>` (docs/INTEGRATION.md). */
  bizEventSubject(tenant: string, type: string): string;
  /** Every tenant's business events (the events stream's subject filter). */
  readonly bizEventsWildcard: string;
  /** Context look-ups by request-reply: `sb.biz.<tenant>.ctx.<kind>`. */
  bizContextSubject(tenant: string, kind: string): string;
  /** A tenant's agent action: `sb.biz.<tenant>.<suffix>` (suffix from the tenant's config, `action.<name>`). */
  bizTenantSubject(tenant: string, suffix: string): string;
  /** Conversation events out: `sb.out.<tenant>.<type>`. */
  outSubject(tenant: string, type: string): string;
  /** Every tenant's conversation events (the out stream's subject filter). */
  readonly outWildcard: string;
  /** Webhook dead letters: `sb.dlq.webhook.<tenant>`. */
  webhookDeadLetterSubject(tenant: string): string;
  /** Business events whose rule action failed for good: `sb.dlq.events.<tenant>`. */
  eventDeadLetterSubject(tenant: string): string;
  /** Every dead letter (the dead-letter stream's subject filter). */
  readonly deadLetterWildcard: string;
  /** JetStream streams (names may not hold dots): business events in, events out, dead letters. */
  readonly bizEventsStream: string;
  readonly outStream: string;
  readonly deadLetterStream: string;
}

export function clusterNames(cluster: string = DEFAULT_CLUSTER): ClusterNames {
  const root = cluster === DEFAULT_CLUSTER ? 'sb' : `sb-${cluster}`;
  return Object.freeze({
    cluster,
    membersBucket: `${root}_members`,
    shardsBucket: `${root}_shards`,
    locksBucket: `${root}_locks`,
    shardSubject: (shard: number) => `${root}.shard.${shard}`,
    memberSubject: (member: string) => `${root}.member.${member}`,
    deliverySubject: (member: string) => `${root}.deliver.${member}`,
    bizEventSubject: (tenant: string, type: string) => `${root}.biz.${tenant}.events.${type}`,
    bizEventsWildcard: `${root}.biz.*.events.>`,
    bizContextSubject: (tenant: string, kind: string) => `${root}.biz.${tenant}.ctx.${kind}`,
    bizTenantSubject: (tenant: string, suffix: string) => `${root}.biz.${tenant}.${suffix}`,
    outSubject: (tenant: string, type: string) => `${root}.out.${tenant}.${type}`,
    outWildcard: `${root}.out.*.>`,
    webhookDeadLetterSubject: (tenant: string) => `${root}.dlq.webhook.${tenant}`,
    eventDeadLetterSubject: (tenant: string) => `${root}.dlq.events.${tenant}`,
    deadLetterWildcard: `${root}.dlq.>`,
    bizEventsStream: `${root}_biz_events`,
    outStream: `${root}_out`,
    deadLetterStream: `${root}_dlq`,
  });
}
