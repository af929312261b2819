/**
 * Which sockets this process holds for which user, and the NATS interest that follows from it:
 * one subscription per online user (`sb.user.<tenant>.<user>`), plus one per tenant with online
 * agents (`sb.lobby.<tenant>`, conversations still waiting for an agent). Delivered frames arrive
 * as msgpack bytes identical to the wire frame, so msgpack sockets get them without re-encoding.
 */
import type { Transport, TransportSubscription } from '../cluster/transport.js';
import { msgpackDecode } from '../protocol/codec.js';

export interface SessionSocket {
  readonly tenant: string;
  readonly user: string;
  readonly role: 'visitor' | 'agent';
  /** Sends an encoded server frame (already msgpack); implementations re-encode for JSON sockets. */
  deliver(msgpackFrame: Uint8Array, decoded: () => unknown): void;
}

interface Interest {
  sub: TransportSubscription;
  // An array, not a Set: almost every user has one socket, and a Set costs ~150 bytes more each.
  sockets: SessionSocket[];
}

export function userSubject(tenant: string, user: string): string {
  return `sb.user.${tenant}.${user}`;
}

export function lobbySubject(tenant: string): string {
  return `sb.lobby.${tenant}`;
}

export class Sessions {
  private readonly interests = new Map<string, Interest>();
  private count = 0;

  constructor(private readonly transport: Transport) {}

  /**
   * Registers the socket's interest. Resolves once NATS has the subscriptions, so anything
   * published after that reaches the socket (the gateway sends `welcome` only then).
   */
  async add(socket: SessionSocket): Promise<void> {
    this.count++;
    let created = this.join(userSubject(socket.tenant, socket.user), socket);
    if (socket.role === 'agent') created = this.join(lobbySubject(socket.tenant), socket) || created;
    if (created) await this.transport.flush();
  }

  remove(socket: SessionSocket): void {
    this.count--;
    this.leave(userSubject(socket.tenant, socket.user), socket);
    if (socket.role === 'agent') this.leave(lobbySubject(socket.tenant), socket);
  }

  /** Sockets registered in this process. */
  get socketCount(): number {
    return this.count;
  }

  closeAll(): void {
    for (const i of this.interests.values()) i.sub.unsubscribe();
    this.interests.clear();
  }

  /** Returns true when this created a new NATS subscription. */
  private join(subject: string, socket: SessionSocket): boolean {
    let interest = this.interests.get(subject);
    const created = !interest;
    if (!interest) {
      const sockets: SessionSocket[] = [];
      const sub = this.transport.subscribe(subject, (m) => {
        let cached: unknown;
        const decoded = () => {
          cached ??= msgpackDecode(m.data);
          return cached;
        };
        for (const s of sockets) s.deliver(m.data, decoded);
      });
      interest = { sub, sockets };
      this.interests.set(subject, interest);
    }
    interest.sockets.push(socket);
    return created;
  }

  private leave(subject: string, socket: SessionSocket): void {
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
