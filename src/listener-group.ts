/**
 * Which workers of a node listen on its port (issue #14, the kill storm; issue #13, more processes never lose).
 *
 * The workers of a node share its port with SO_REUSEPORT, and the kernel picks a worker for each new
 * connection by a hash of its addresses, whether that worker has room or not.
 *
 * **A full worker leaves the group.** After one worker of a full node is killed, its clients come back to
 * six listeners, five of them soon at their socket limit: five attempts in six were refused `503` and
 * retried, and the storm's last percent took a minute. So a worker at its limit asks its supervisor to stop
 * listening, and listens again once it has room; the kernel then sends new connections only to workers with
 * room. Sockets it holds stay; the node's HTTP API is served by the workers still listening. The supervisor
 * grants a leave only while another ready worker listens, so the port always has a listener: a node whose
 * every worker is full keeps one that answers `503` with `retryAfterMs`. When the last worker listening
 * exits, the supervisor asks those out of the group to listen again until it is back.
 *
 * **Gateways stand by while the owners have room.** Workers beyond the node's shard owners (`SB_OWNS_SHARDS=0`,
 * supervisor-options.ts) exist to hold sockets past one process's descriptor limit. A socket held there costs
 * the owner more than the gateway saves it (the owner still runs the message's actor, store and pushes, and
 * adds the link hop: BENCHMARKS.md, twenty-seventh session), so a gateway (`SB_GATEWAY_STANDBY=1`, which the
 * supervisor sets for its gateways unless told otherwise) starts out of the group and
 * listens only while the owners are pressed: an owner is full (it asks to leave), its upgrade admission
 * has refused for rate for SEAT_WAKE_PACED_MS on end or a crowd within a second (a ramp, a storm), or no
 * owner listens (crashed, restarting). Once every worker of the node has been calm over `SEAT_CALM_MS`
 * (see there), the gateways stand by again, keeping the sockets they hold. A node below its owners' limits
 * and admission rate thus runs all its sockets on its owners, as a node of owners only would.
 *
 * A worker without a supervisor (`switchboard node`, tests) never leaves and never stands by.
 */
import { type ParentChannel, sendToParent } from './parent-channel.js';

/** The IPC messages of this protocol; `sb` tells them apart from anything else on the channel. */
export type SeatIpc =
  /** Worker → supervisor: full, may I stop listening? */
  | { sb: 'seat-leave' }
  | { sb: 'seat-leave-ok' }
  | { sb: 'seat-leave-no' }
  /** Worker → supervisor: listening again. */
  | { sb: 'seat-joined' }
  /** Supervisor → worker: nobody listens, take the port back, full or not. */
  | { sb: 'seat-rejoin' }
  /** Worker → supervisor: pressed (pacing upgrades for long or a crowd, or full): wake the gateways. */
  | { sb: 'seat-busy' }
  /** Worker → supervisor: not calm, though not pressed (taking upgrades: keep the gateways as they are). */
  | { sb: 'seat-active' }
  /** Worker → supervisor: calm over the last SEAT_CALM_MS. */
  | { sb: 'seat-calm' }
  /** Supervisor → gateway: the owners are pressed, listen (if you have room). */
  | { sb: 'seat-wake' }
  /** Supervisor → gateway: the owners are calm, stop listening (keep your sockets). */
  | { sb: 'seat-standby' };

/** A full worker refused a leave asks again after this (on the next upgrade that finds it full). */
export const SEAT_ASK_INTERVAL_MS = 1_000;
/** A worker out of the group listens again at this share of its limit below it, so it does not flap. */
export const SEAT_REJOIN_MARGIN = 0.02;
/** A worker that could not listen again retries after this. */
export const SEAT_RELISTEN_RETRY_MS = 1_000;
/**
 * An owner presses for its gateways once its upgrade admission has refused for rate without a pause of
 * SEAT_PACED_GAP_MS for this long: more sockets are coming than it admits in this long (5 000 at the
 * default SB_UPGRADE_RATE). A shorter burst is absorbed by the owner alone; a ramp or a storm wakes the
 * gateways after this long. Measured as a streak of refusals, not as how far ahead they are told to come
 * back: clients that wait what they are told (as they should) keep that schedule short however many are
 * waiting. In the first full connections run with standby the schedule never reached 5 s, and the owner
 * alone took the ramp's first 19 000 sockets at its 1 000 a second (BENCHMARKS.md, twenty-eighth session).
 */
export const SEAT_WAKE_PACED_MS = 5_000;
export const SEAT_PACED_GAP_MS = 1_000;
/**
 * A crowd presses at once: an owner that refuses this share of its upgrade rate for rate within one
 * SEAT_PACED_GAP_MS (400 a second at the default SB_UPGRADE_RATE) has more clients knocking than a streak
 * needs to prove. A client waits the `retryAfterMs` it is told (250 ms at the least), so a refusal rate this
 * high needs more than 100 connects in flight: a restarted node's returning crowd (its clients told to come
 * back at its pace of 6 workers) or a ramp, never the e2e bench's 64 at a time. Without it the owner of a
 * node that restarted under 100k took the crowd alone for 5 s at its own rate (BENCHMARKS.md, twenty-ninth
 * session).
 */
export const SEAT_WAKE_CROWD_SHARE = 0.4;
/**
 * A crowd is at least this many refusals within SEAT_PACED_GAP_MS, whatever the rate: at a low
 * SB_UPGRADE_RATE a share of it is a handful that a few clients make (64 waiting 250 ms make 256 a second).
 */
export const SEAT_WAKE_CROWD_MIN = 300;

/** Refusals for rate within SEAT_PACED_GAP_MS that make a crowd, for an upgrade rate of `ratePerS`. */
export function crowdOf(ratePerS: number): number {
  return Math.max(
    SEAT_WAKE_CROWD_MIN,
    Math.ceil((ratePerS * SEAT_PACED_GAP_MS * SEAT_WAKE_CROWD_SHARE) / 1000),
  );
}
/**
 * A worker is calm over a window of this long when, in it, it was not pressed, admitted at most
 * SEAT_CALM_ADMIT_SHARE of what its upgrade rate allows, and it ends holding at most SEAT_CALM_SHARE of its
 * socket limit. The gateways stand by once every worker of the node is calm: not while a ramp or a storm
 * still brings sockets (then the owner is calm only because the gateways take them), nor between a storm's
 * waves. Each standby drops the connections queued on the gateways' listening sockets, which then retry.
 */
export const SEAT_CALM_MS = 30_000;
export const SEAT_CALM_SHARE = 0.5;
export const SEAT_CALM_ADMIT_SHARE = 0.1;

const SEAT_MESSAGES = new Set<string>([
  'seat-leave',
  'seat-leave-ok',
  'seat-leave-no',
  'seat-joined',
  'seat-rejoin',
  'seat-busy',
  'seat-active',
  'seat-calm',
  'seat-wake',
  'seat-standby',
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
  /** Listens on the node's port; resolves false when it could not. */
  listen(): Promise<boolean>;
  /** Closes the listening socket; sockets already accepted stay. */
  unlisten(): void;
  /** The channel to the supervisor (`process` in a worker). */
  parent: ParentChannel<SeatIpc>;
  /**
   * A gateway of a supervised node (SB_GATEWAY_STANDBY, set by the supervisor): it starts on standby, not
   * listening, until the supervisor wakes it. Ignored without a supervisor.
   */
  standby?: boolean;
  /** Upgrades admitted so far, and how many a second the worker admits at most (admission.ts). */
  admitted?(): number;
  ratePerS?: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  now?: () => number;
}

/** Worker side: whether this worker listens on the node's port, by its socket count and its supervisor. */
export class ListenerSeat {
  /** The listening socket is open. */
  private bound = false;
  /** A listen is in progress. */
  private joining = false;
  /** A leave was asked and not yet answered. */
  private asking = false;
  /** Out of the group because full (a leave was granted). */
  private full = false;
  /** Out of the group because the supervisor said so (a gateway while the owners are calm). */
  private standby: boolean;
  private closed = false;
  /** What this worker last told its supervisor; a new worker has told nothing until its first check. */
  private told: 'busy' | 'active' | 'calm' | undefined;
  private lastPressAt: number;
  /** Upgrades admitted at the start of the current calm window, and at most how many it may take. */
  private windowAdmitted: number;
  private readonly calmAdmits: number;
  private nextAskAt = 0;
  /** The current streak of upgrades refused for rate: its first and its latest. */
  private pacedSince = 0;
  private lastPacedAt = Number.NEGATIVE_INFINITY;
  /** Refusals for rate since `crowdSince`, and how many within SEAT_PACED_GAP_MS press at once. */
  private crowdSince = Number.NEGATIVE_INFINITY;
  private crowd = 0;
  private readonly crowdAt: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private calmTimer: NodeJS.Timeout | undefined;
  private readonly rejoinAt: number;
  private readonly now: () => number;
  private readonly supervised: boolean;
  /** Times this worker left the group full. */
  leaves = 0;

  constructor(private readonly deps: SeatDeps) {
    this.rejoinAt = rejoinAt(deps.max);
    this.now = deps.now ?? Date.now;
    this.supervised = deps.parent.send !== undefined;
    this.standby = this.supervised && deps.standby === true;
    this.lastPressAt = this.now();
    this.windowAdmitted = deps.admitted?.() ?? 0;
    this.calmAdmits =
      deps.ratePerS === undefined
        ? Number.POSITIVE_INFINITY
        : (deps.ratePerS * SEAT_CALM_MS * SEAT_CALM_ADMIT_SHARE) / 1000;
    this.crowdAt = deps.ratePerS === undefined ? Number.POSITIVE_INFINITY : crowdOf(deps.ratePerS);
    if (this.supervised) {
      deps.parent.on('message', this.onMessage);
      // The supervisor counts a new owner as not calm until its first check says so: one restarted after
      // a crash, while its clients come back, does not put the gateways it needed on standby at once.
      this.calmTimer = setInterval(() => this.checkCalm(), SEAT_CALM_MS);
      this.calmTimer.unref?.();
    }
  }

  /** Listens unless on standby; false when that first listen failed. */
  async start(): Promise<boolean> {
    if (this.standby) {
      this.deps.log.info({}, 'gateway on standby: not listening while the owners have room');
      return true;
    }
    this.joining = true;
    const ok = await this.deps.listen();
    this.joining = false;
    this.bound = ok;
    return ok;
  }

  /** True while this worker's listening socket is open. */
  get listening(): boolean {
    return this.bound;
  }

  /** True while a gateway stands by (out of the group by its supervisor's word). */
  get standingBy(): boolean {
    return this.standby;
  }

  /** Call after the count grew, or when an upgrade found the worker full: a full worker asks to leave. */
  grew(): void {
    if (!this.bound || this.asking || this.full || this.deps.count() < this.deps.max) return;
    this.pressed();
    if (this.now() < this.nextAskAt) return;
    if (this.send({ sb: 'seat-leave' })) this.asking = true;
  }

  /** Call after the count fell: a worker out of the group with room listens again. */
  shrank(): void {
    if (this.full && this.deps.count() <= this.rejoinAt) {
      this.full = false;
      this.apply('room again');
    }
  }

  /**
   * Call at each upgrade refused for rate: pacing for SEAT_WAKE_PACED_MS on end presses, and so does a
   * crowd (SEAT_WAKE_CROWD_SHARE of the rate refused within SEAT_PACED_GAP_MS).
   */
  paced(): void {
    const now = this.now();
    if (now - this.lastPacedAt > SEAT_PACED_GAP_MS) this.pacedSince = now;
    this.lastPacedAt = now;
    if (now - this.crowdSince >= SEAT_PACED_GAP_MS) {
      this.crowdSince = now;
      this.crowd = 0;
    }
    this.crowd++;
    if (now - this.pacedSince >= SEAT_WAKE_PACED_MS || this.crowd >= this.crowdAt) this.pressed();
  }

  /** Pressed (full, pacing for long, or a crowd): the supervisor wakes the gateways. */
  pressed(): void {
    if (!this.supervised) return;
    this.lastPressAt = this.now();
    if (this.told === 'busy') return;
    this.told = 'busy';
    this.send({ sb: 'seat-busy' });
  }

  /** Stops answering the supervisor; the caller closes the listening socket itself. */
  close(): void {
    this.closed = true;
    this.bound = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.calmTimer);
    this.deps.parent.off('message', this.onMessage);
  }

  private readonly onMessage = (m: unknown): void => {
    if (!isSeatIpc(m) || this.closed) return;
    if (m.sb === 'seat-leave-ok' && this.asking) {
      this.asking = false;
      this.full = true;
      this.leaves++;
      this.apply('full');
      this.deps.log.info({ sockets: this.deps.count(), max: this.deps.max }, 'full: left the listener group');
      this.shrank(); // sockets may have closed while the supervisor answered
    } else if (m.sb === 'seat-leave-no' && this.asking) {
      this.asking = false;
      this.nextAskAt = this.now() + SEAT_ASK_INTERVAL_MS;
    } else if (m.sb === 'seat-rejoin') {
      this.full = false;
      this.standby = false;
      this.apply('no other worker listens');
    } else if (m.sb === 'seat-wake') {
      this.standby = false;
      if (this.told !== 'busy') this.told = undefined; // the supervisor counts it not calm: say so at the next check
      this.apply('the owners are pressed');
    } else if (m.sb === 'seat-standby') {
      this.standby = true;
      this.apply('the owners are calm');
    }
  };

  /** Listens or stops listening as the flags say. */
  private apply(why: string): void {
    const want = !this.closed && !this.full && !this.standby;
    if (!want && this.bound) {
      this.deps.unlisten();
      this.bound = false;
      this.asking = false;
      if (this.standby) this.deps.log.info({ sockets: this.deps.count(), why }, 'standing by');
    } else if (want && !this.bound && !this.joining) {
      clearTimeout(this.retryTimer);
      this.joining = true;
      this.deps.listen().then(
        (ok) => this.joined(ok, why),
        () => this.joined(false, why),
      );
    }
  }

  private joined(ok: boolean, why: string): void {
    this.joining = false;
    const want = !this.closed && !this.full && !this.standby;
    if (!ok) {
      if (!want) return;
      this.deps.log.warn({ retryMs: SEAT_RELISTEN_RETRY_MS }, 'could not listen again: retrying');
      this.retryTimer = setTimeout(() => this.apply(why), SEAT_RELISTEN_RETRY_MS);
      return;
    }
    if (!want) {
      this.deps.unlisten(); // told otherwise meanwhile
      return;
    }
    this.bound = true;
    this.send({ sb: 'seat-joined' });
    this.deps.log.info({ sockets: this.deps.count(), why }, 'listening again');
  }

  /** Every SEAT_CALM_MS: tells the supervisor when this worker became calm, or stopped being calm. */
  private checkCalm(): void {
    const admitted = this.deps.admitted?.() ?? 0;
    const recent = admitted - this.windowAdmitted;
    this.windowAdmitted = admitted;
    const calm =
      this.now() - this.lastPressAt >= SEAT_CALM_MS &&
      recent <= this.calmAdmits &&
      !this.full &&
      this.deps.count() <= this.deps.max * SEAT_CALM_SHARE;
    if (calm && this.told !== 'calm') {
      this.told = 'calm';
      this.send({ sb: 'seat-calm' });
    } else if (!calm && (this.told === 'calm' || this.told === undefined)) {
      this.told = 'active';
      this.send({ sb: 'seat-active' });
    }
  }

  private send(msg: SeatIpc): boolean {
    return sendToParent(this.deps.parent, msg);
  }
}

/** One ready worker as the supervisor sees it. */
export interface SeatPeer {
  readonly id: string;
  /**
   * A worker that listens from its start: a shard owner, or any worker of a node whose gateways do not
   * stand by. The others are gateways, on standby while every owner is calm.
   */
  readonly owner: boolean;
  send(msg: SeatIpc): boolean;
}

export interface SupervisorListenerGroup {
  /** Every IPC message of a worker. */
  onMessage(from: SeatPeer, msg: unknown): void;
  /** A worker's process is ready (an owner listens; a gateway stands by unless the owners are pressed). */
  ready(peer: SeatPeer): void;
  /** A worker's process exited (its next process starts anew). */
  gone(id: string): void;
  /** Ids of the ready workers out of the group. */
  out(): string[];
  /** Whether the gateways are awake. */
  awake(): boolean;
}

/** Supervisor side; `peers()` are the ready workers. */
export function supervisorListenerGroup(peers: () => readonly SeatPeer[]): SupervisorListenerGroup {
  /** Ready workers known not to listen: out full, on standby, or told to listen and not yet listening. */
  const out = new Set<string>();
  /** Workers not calm (pressed, or taking upgrades); an owner counts as such from its start until calm. */
  const busy = new Set<string>();
  /** Gateways told to listen that have not said they do. */
  const waking = new Set<string>();
  /** Full workers whose leave waits for a waking gateway to listen (answered at its `seat-joined`). */
  const pending = new Map<string, SeatPeer>();
  let awake = false;
  const listening = (p: SeatPeer) => !out.has(p.id);
  const gateways = () => peers().filter((p) => !p.owner);

  const wakeOne = (g: SeatPeer): void => {
    if (out.has(g.id)) waking.add(g.id);
    busy.add(g.id); // it is about to take sockets: not calm until its next check says so
    g.send({ sb: 'seat-wake' });
  };
  const wake = (except?: string): void => {
    if (awake) return;
    awake = true;
    for (const g of gateways()) if (g.id !== except) wakeOne(g);
  };
  /** Answers the leaves that waited, once another worker listens (or none will soon). */
  const answerPending = (granted: boolean): void => {
    for (const p of pending.values()) {
      if (granted) out.add(p.id);
      p.send({ sb: granted ? 'seat-leave-ok' : 'seat-leave-no' });
    }
    pending.clear();
  };
  /** Every gateway stands by once every ready worker is calm and every owner listens. */
  const settle = (): void => {
    const owners = peers().filter((p) => p.owner);
    if (!awake || owners.length === 0) return;
    if (owners.some((o) => !listening(o)) || peers().some((p) => busy.has(p.id))) return;
    awake = false;
    waking.clear();
    for (const g of gateways()) {
      out.add(g.id);
      g.send({ sb: 'seat-standby' });
    }
    answerPending(false);
  };

  return {
    onMessage(from, msg) {
      if (!isSeatIpc(msg)) return;
      switch (msg.sb) {
        case 'seat-joined':
          out.delete(from.id);
          waking.delete(from.id);
          pending.delete(from.id);
          answerPending(true);
          if (from.owner) settle();
          return;
        case 'seat-busy':
          busy.add(from.id);
          if (from.owner) wake();
          return;
        case 'seat-active':
          busy.add(from.id);
          return;
        case 'seat-calm':
          busy.delete(from.id);
          settle();
          return;
        case 'seat-leave': {
          if (from.owner) {
            busy.add(from.id);
            wake();
          }
          const another = peers().some((p) => p.id !== from.id && listening(p));
          if (!another && [...waking].some((id) => id !== from.id)) {
            pending.set(from.id, from); // a gateway is about to listen: leave then, not a second later
            return;
          }
          if (another) out.add(from.id);
          from.send({ sb: another ? 'seat-leave-ok' : 'seat-leave-no' });
          return;
        }
        default:
          return;
      }
    },
    ready(peer) {
      if (peer.owner) {
        // Not calm until its first check says so (ListenerSeat): awake gateways stay awake meanwhile.
        busy.add(peer.id);
        out.delete(peer.id);
        return;
      }
      busy.delete(peer.id);
      // A gateway starts on standby, and listens at once while the owners are pressed or one is down
      // (gone() woke the gateways). At the node's start its owners may not be ready yet: a gateway then
      // waits for them; an owner that fails its first start stops the node.
      out.add(peer.id);
      if (awake) wakeOne(peer);
    },
    gone(id) {
      out.delete(id);
      busy.delete(id);
      pending.delete(id);
      waking.delete(id);
      if (waking.size === 0) answerPending(false); // they ask again after SEAT_ASK_INTERVAL_MS
      const ready = peers().filter((p) => p.id !== id);
      if (!ready.some((p) => p.owner && listening(p))) wake(id);
      if (ready.some(listening)) return;
      // Nobody listens until this worker is back: those out of the group take the port again, full or not.
      for (const p of ready) p.send({ sb: 'seat-rejoin' });
    },
    out: () => peers().flatMap((p) => (out.has(p.id) ? [p.id] : [])),
    awake: () => awake,
  };
}
