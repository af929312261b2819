/**
 * A one-shot CQL liveness probe, kept under src/store/ because only this folder imports cassandra-driver.
 * The stack launcher uses it to know when a freshly started Cassandra answers queries.
 */
import cassandra from 'cassandra-driver';

/**
 * Connects to `contactPoint` ("host:port"), runs `SELECT release_version FROM system.local` and shuts the
 * client down. Resolves the release version (e.g. "5.0.9"), or null when the node cannot be reached or does
 * not answer within `timeoutMs`. Never rejects.
 */
export async function probeCql(
  contactPoint: string,
  localDataCenter: string,
  timeoutMs: number,
): Promise<string | null> {
  const client = new cassandra.Client({
    contactPoints: [contactPoint],
    localDataCenter,
    socketOptions: { connectTimeout: timeoutMs, readTimeout: timeoutMs },
  });
  // The attempt shuts its client down itself once it settles, even after the deadline has answered null:
  // the driver's shutdown() is a no-op while connect() is still in progress.
  const attempt = (async (): Promise<string | null> => {
    try {
      await client.connect();
      const result = await client.execute('SELECT release_version FROM system.local');
      const version: unknown = result.first()?.get('release_version');
      return typeof version === 'string' ? version : null;
    } catch {
      return null;
    } finally {
      await client.shutdown().catch(() => undefined);
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  try {
    return await Promise.race([attempt, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
