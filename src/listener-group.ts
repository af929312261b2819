/**
 * A full worker leaves its node's listener group (issue #14, the kill storm).
 *
 * The workers of a node share its port with SO_REUSEPORT, and the kernel picks a worker for each new
 * connection by a hash of its addresses, whether that worker has room or not. After one worker of a full
 * node is killed, its clients come back to six listeners, five of them soon at their socket limit: five
 * attempts in six were refused `503` and retried, and the storm's last percent took a minute. So a worker at
 * its limit asks its supervisor to stop listening, and listens again once it has room; the kernel then
 * sends new connections only to workers with room. Sockets it holds stay; the node's HTTP API is served by
 * the workers still listening.
 *
 * The supervisor grants a leave only while another ready worker listens, so the port always has a listener:
 * a node whose every worker is full keeps one that answers `503` with `retryAfterMs`. When the last worker
 * listening exits, the supervisor asks those out of the group to listen again until it is back.
 *
 * A worker without a supervisor (`switchboard node`, tests) never leaves.
 */
import { type ParentChannel, sendToParent } from './parent-channel.js';

/** The IPC messages of this protocol; `sb` tells them apart from anything else on the channel. */
export type SeatIpc =
  | { sb: 'seat-leave' }
  | { sb: 'seat-leave-ok' }
  | { sb: 'seat-leave-no' }
  | { sb: 'seat-joined' }
  | { sb: 'seat-rejoin' };

/** A full worker refused a leave asks again after this (on the next upgrade that finds it full). */
export const SEAT_ASK_INTERVAL_MS = 1_000;
/** A worker out of the group listens again at this share of its limit below it, so it does not flap. */
export const SEAT_REJOIN_MARGIN = 0.02;
/** A worker that could not listen again retries after this. */
export const SEAT_RELISTEN_RETRY_MS = 1_000;

const SEAT_MESSAGES = new Set<string>([
  'seat-leave',
  'seat-leave-ok',
  'seat-leave-no',
  'seat-joined',
  'seat-rejoin',
]);

function isSeatIpc(m: unknown): m is SeatIpc {
  return typeof m === 'object' && m !== null && SEAT_MESSAGES.has((m as { sb?: unknown }).sb as string);
}

/** The socket count at which a worker out of the group listens again (at least one below its limit). */
export function rejoinAt(max: number): number {
  return Math.max(0, max - Math.max(1, Math.ceil(max * SEAT_REJOIN_MARGIN)));
}

export interface SeatDeps {
  /** The worker's socket limit (socket-limit.ts). */
  max: number;
  /** Sockets held plus upgrades in progress. */
  count(): number;
  /** Listens on the node's port again; resolves false when it could not. */
  listen(): Promise<boolean>;
  /** Closes the listening socket; sockets already accepted stay. */
  unlisten(): void;
  /** The channel to the supervisor (`process` in a worker). */
  parent: ParentChannel<SeatIpc>;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  now?: () => number;
}

type SeatState = 'in' | 'asking' | 'out' | 'joining' | 'closed';

/** Worker side: whether this worker listens on the node's port, by its socket count. */
export class ListenerSeat {
  private state: SeatState = 'in';
  private nextAskAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly rejoinAt: number;
  private readonly now: () => number;
  /** Times this worker left the group. */
  leaves = 0;

  constructor(private readonly deps: SeatDeps) {
    this.rejoinAt = rejoinAt(deps.max);
    this.now = deps.now ?? Date.now;
    if (deps.parent.send) deps.parent.on('message', this.onMessage);
  }

  /** True while this worker is in the listener group (it may be asking to leave). */
  get listening(): boolean {
    return this.state === 'in' || this.state === 'asking';
  }

  /** Call after the count grew, or when an upgrade found the worker full: a full worker asks to leave. */
  grew(): void {
    if (this.state !== 'in' || this.deps.count() < this.deps.max || this.now() < this.nextAskAt) return;
    if (this.send({ sb: 'seat-leave' })) this.state = 'asking';
  }

  /** Call after the count fell: a worker out of the group with room listens again. */
  shrank(): void {
    if (this.state === 'out' && this.deps.count() <= this.rejoinAt) this.rejoin('room again');
  }

  /** Stops answering the supervisor; the caller closes the listening socket itself. */
  close(): void {
    this.state = 'closed';
    clearTimeout(this.timer);
    this.deps.parent.off('message', this.onMessage);
  }

  private readonly onMessage = (m: unknown): void => {
    if (!isSeatIpc(m)) return;
    if (m.sb === 'seat-leave-ok' && this.state === 'asking') {
      this.deps.unlisten();
      this.state = 'out';
      this.leaves++;
      this.deps.log.info({ sockets: this.deps.count(), max: this.deps.max }, 'full: left the listener group');
      this.shrank(); // sockets may have closed while the supervisor answered
    } else if (m.sb === 'seat-leave-no' && this.state === 'asking') {
      this.state = 'in';
      this.nextAskAt = this.now() + SEAT_ASK_INTERVAL_MS;
    } else if (m.sb === 'seat-rejoin' && this.state === 'out') {
      this.rejoin('no other worker listens');
    }
  };

  private rejoin(why: string): void {
    this.state = 'joining';
    this.deps.listen().then(
      (ok) => this.joined(ok, why),
      () => this.joined(false, why),
    );
  }

  private joined(ok: boolean, why: string): void {
    if (this.state !== 'joining') {
      if (ok) this.deps.unlisten(); // closed meanwhile
      return;
    }
    if (!ok) {
      this.state = 'out';
      this.deps.log.warn({ retryMs: SEAT_RELISTEN_RETRY_MS }, 'could not listen again: retrying');
      this.timer = setTimeout(() => {
        if (this.state === 'out') this.rejoin(why);
      }, SEAT_RELISTEN_RETRY_MS);
      return;
    }
    this.state = 'in';
    this.send({ sb: 'seat-joined' });
    this.deps.log.info({ sockets: this.deps.count(), why }, 'listening again');
  }

  private send(msg: SeatIpc): boolean {
    return sendToParent(this.deps.parent, msg);
  }
}

/** One ready worker as the supervisor sees it. */
export interface SeatPeer {
  readonly id: string;
  send(msg: SeatIpc): boolean;
}

/**
 * Supervisor side. `onMessage(from, msg)` takes every IPC message of a worker; `gone(id)` is called when a
 * worker's process exits (its next process listens when it starts).
 */
export function supervisorListenerGroup(peers: () => readonly SeatPeer[]): {
  onMessage(from: SeatPeer, msg: unknown): void;
  gone(id: string): void;
  /** Ids of the ready workers out of the group. */
  out(): string[];
} {
  const out = new Set<string>();
  const listening = (p: SeatPeer) => !out.has(p.id);
  return {
    onMessage(from, msg) {
      if (!isSeatIpc(msg)) return;
      if (msg.sb === 'seat-joined') out.delete(from.id);
      if (msg.sb !== 'seat-leave') return;
      const another = peers().some((p) => p.id !== from.id && listening(p));
      if (another) out.add(from.id);
      from.send({ sb: another ? 'seat-leave-ok' : 'seat-leave-no' });
    },
    gone(id) {
      out.delete(id);
      const ready = peers().filter((p) => p.id !== id);
      if (ready.some(listening)) return;
      // Nobody listens until this worker is back: those out of the group take the port again, full or not.
      for (const p of ready) p.send({ sb: 'seat-rejoin' });
    },
    out: () => peers().flatMap((p) => (out.has(p.id) ? [p.id] : [])),
  };
}
