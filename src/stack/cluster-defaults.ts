/**
 * Defaults of `cluster up`, apart from src/stack/local-cluster.ts so that the command line can show them
 * without loading the stack (and with it cassandra-driver) into every supervisor (issue #14).
 */
export const DEFAULT_CLUSTER_BASE_PORT = 8080;
export const DEFAULT_CLUSTER_WORKERS = 1;
