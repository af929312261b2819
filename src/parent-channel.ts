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
