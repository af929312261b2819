/**
 * Which sockets this process holds for which user, and the NATS interest that follows from it:
 * one subscription per online user (`sb.user.<tenant>.<user>`). Agents hear only of conversations
 * assigned to them (there is no tenant-wide lobby: the queue actor assigns). Delivered frames
 * arrive as msgpack bytes identical to the wire frame, so msgpack sockets get them without
 * re-encoding.
 */
import type { ClusterNames } from '../cluster/names.js';
import type { Transport, TransportSubscription } from '../cluster/transport.js';
import { msgpackDecode } from '../protocol/codec.js';

export interface SessionSocket {
  readonly tenant: string;
  readonly user: string;
  readonly role: 'visitor' | 'agent';
}

/**
 * Sends an encoded server frame (msgpack bytes; `decoded` gives the frame for JSON sockets) to one
 * socket. One function for all sockets: uWS copies a socket's user data at upgrade, so methods on a
 * prototype would not survive, and a closure per socket would cost memory.
 */
export type Deliver<S extends SessionSocket> = (
  socket: S,
  msgpackFrame: Uint8Array,
  decoded: () => unknown,
) => void;

interface Interest<S> {
  sub: TransportSubscription;
  // An array, not a Set: almost every user has one socket, and a Set costs ~150 bytes more each.
  sockets: S[];
}

export class Sessions<S extends SessionSocket = SessionSocket> {
  private readonly interests = new Map<string, Interest<S>>();
  private count = 0;

  constructor(
    private readonly transport: Transport,
    private readonly names: ClusterNames,
    private readonly deliver: Deliver<S>,
  ) {}

  /**
   * Registers the socket's interest. Resolves once NATS has the subscriptions, so anything
   * published after that reaches the socket (the gateway sends `welcome` only then).
   */
  async add(socket: S): Promise<void> {
    this.count++;
    const created = this.join(this.names.userSubject(socket.tenant, socket.user), socket);
    if (created) await this.transport.flush();
  }

  remove(socket: S): void {
    this.count--;
    this.leave(this.names.userSubject(socket.tenant, socket.user), socket);
  }

  /** Sockets registered in this process. */
  get socketCount(): number {
    return this.count;
  }

  /**
   * Hands a frame published on `subject` to this process's own sockets of it. The delivery bus does
   * not echo a process's publishes back to it (NATS noEcho), so every publisher calls this for its
   * own share: one hop through nats-server fewer for every frame whose recipient is on the same process.
   */
  deliverLocal(subject: string, data: Uint8Array): void {
    const interest = this.interests.get(subject);
    if (interest !== undefined) this.dispatch(interest.sockets, data);
  }

  closeAll(): void {
    for (const i of this.interests.values()) i.sub.unsubscribe();
    this.interests.clear();
  }

  /** Returns true when this created a new NATS subscription. */
  private join(subject: string, socket: S): boolean {
    let interest = this.interests.get(subject);
    const created = !interest;
    if (!interest) {
      const sockets: S[] = [];
      const sub = this.transport.subscribe(subject, (m) => this.dispatch(sockets, m.data));
      interest = { sub, sockets };
      this.interests.set(subject, interest);
    }
    interest.sockets.push(socket);
    return created;
  }

  private dispatch(sockets: readonly S[], data: Uint8Array): void {
    let cached: unknown;
    const decoded = () => {
      cached ??= msgpackDecode(data);
      return cached;
    };
    // A delivery can close a socket (slow consumer), and closing removes it from `sockets`
    // synchronously: iterate over a copy when there is more than one, or the next one is skipped.
    const targets = sockets.length === 1 ? sockets : sockets.slice();
    for (const s of targets) this.deliver(s, data, decoded);
  }

  private leave(subject: string, socket: S): void {
    const interest = this.interests.get(subject);
    if (!interest) return;
    const at = interest.sockets.indexOf(socket);
    if (at >= 0) interest.sockets.splice(at, 1);
    if (interest.sockets.length === 0) {
      interest.sub.unsubscribe();
      this.interests.delete(subject);
    }
  }
}
