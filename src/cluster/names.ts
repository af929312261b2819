/**
 * The NATS names of one Switchboard cluster. The default cluster uses the names of DESIGN.md
 * (`sb.shard.<n>`, `sb.user.<tenant>.<user>`, buckets `sb_members`...); a named cluster
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
  userSubject(tenant: string, user: string): string;
  lobbySubject(tenant: string): string;
}

export function clusterNames(cluster: string = DEFAULT_CLUSTER): ClusterNames {
  const root = cluster === DEFAULT_CLUSTER ? 'sb' : `sb-${cluster}`;
  return Object.freeze({
    cluster,
    membersBucket: `${root}_members`,
    shardsBucket: `${root}_shards`,
    locksBucket: `${root}_locks`,
    shardSubject: (shard: number) => `${root}.shard.${shard}`,
    userSubject: (tenant: string, user: string) => `${root}.user.${tenant}.${user}`,
    lobbySubject: (tenant: string) => `${root}.lobby.${tenant}`,
  });
}
