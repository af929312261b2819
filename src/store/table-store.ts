/**
 * The base of the stores that share the history keyspace's connection (chat, desk, reception): their
 * prepared statements, and one way to run them (prepared, at the store's consistency, driver errors mapped
 * by store-errors.ts).
 */
import type cassandra from 'cassandra-driver';
import type { CqlClient } from './request-gate.js';
import { rethrowStoreError } from './store-errors.js';

export abstract class TableStore<Statements> {
  protected readonly cql: Statements;

  constructor(
    protected readonly client: CqlClient,
    keyspace: string,
    protected readonly consistency: number,
    statements: (keyspace: string) => Statements,
  ) {
    this.cql = statements(keyspace);
  }

  /** One prepared statement; `fetchSize` bounds a read's page to what the caller will use. */
  protected run(query: string, params: unknown[], fetchSize?: number): Promise<cassandra.types.ResultSet> {
    return this.client
      .execute(query, params, {
        prepare: true,
        consistency: this.consistency,
        ...(fetchSize === undefined ? {} : { fetchSize }),
      })
      .catch(rethrowStoreError);
  }
}
