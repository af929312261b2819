/**
 * A worker's IPC channel to its supervisor (`process` in a worker spawned with an IPC channel, see
 * src/worker-process.ts). Node-wide metrics (src/node-metrics.ts), the listener group
 * (src/listener-group.ts) and the node's drain (NodeDrainingIpc) travel on it, each message told apart by
 * its `sb` field.
 */

/** The channel to the parent process; `send` is absent when the process was not spawned with IPC. */
export interface ParentChannel<M = unknown> {
  send?: ((msg: M) => boolean) | undefined;
  readonly connected?: boolean;
  on(event: 'message', listener: (msg: unknown) => void): unknown;
  off(event: 'message', listener: (msg: unknown) => void): unknown;
}

/** This process's own channel (its `send` is undefined without a supervisor). */
export function processChannel<M>(): ParentChannel<M> {
  return process as unknown as ParentChannel<M>;
}

/** Sends to the supervisor; false without one, or when the channel is closed or refuses. */
export function sendToParent<M>(parent: ParentChannel<M>, msg: M): boolean {
  if (!parent.send || parent.connected === false) return false;
  try {
    return parent.send(msg);
  } catch {
    return false;
  }
}

/**
 * From the supervisor to each worker right before it drains them all (supervisor.ts, stop): the members
 * stopping together. A worker whose other live members are all in the list need not linger to forward
 * late pushes (Presence.retire): every socket they could reach is being closed by the same drain.
 */
export interface NodeDrainingIpc {
  sb: 'node-draining';
  members: string[];
}

export function isNodeDraining(msg: unknown): msg is NodeDrainingIpc {
  const m = msg as Partial<NodeDrainingIpc> | null;
  return (
    typeof m === 'object' &&
    m !== null &&
    m.sb === 'node-draining' &&
    Array.isArray(m.members) &&
    m.members.every((x) => typeof x === 'string')
  );
}
