/** Where the test servers are (set by test/run.ts), with the defaults it uses. */
export const TEST_NATS_URL = process.env['SB_TEST_NATS_URL'] ?? 'nats://127.0.0.1:24222';
export const TEST_CASSANDRA = process.env['SB_TEST_CASSANDRA'] ?? '127.0.0.1:29042';
export const TEST_JWT_SECRET = 'switchboard-test-secret-0123456789abcdefghij';
/** SB_ADMIN_TOKEN of test brokers: the credential for /metrics and /admin/*. */
export const TEST_ADMIN_TOKEN = 'switchboard-test-admin-token-0123456789';
export const ADMIN_HEADERS = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

/** A fresh keyspace name per test file, so files never see each other's rows. */
export function randomKeyspace(prefix = 'sbt'): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}
