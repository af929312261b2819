/**
 * Which sockets this process holds for which user. Nothing here touches NATS: the cluster learns
 * where a user is from the presence directory (src/presence/), which keeps no per-user interest on
 * NATS. Agents hear only of conversations assigned to them (there is no tenant-wide lobby: the queue
 * actor assigns). Delivered frames arrive as msgpack bytes identical to the wire frame, so msgpack
 * sockets get them without re-encoding.
 */
import type { LocalUsers } from '../presence/presence.js';
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

export class Sessions<S extends SessionSocket = SessionSocket> implements LocalUsers {
  // tenant -> user -> one socket, or an array when the user has several. Keyed by the socket's own
  // strings, so an entry costs ~30 bytes (a combined key string would add ~70 per connection), and
  // almost every user has one socket: an array (or a Set, ~150 bytes more) for each would be paid by all.
  private readonly tenants = new Map<string, Map<string, S | S[]>>();
  private count = 0;
  private userTotal = 0;

  constructor(private readonly deliverTo: Deliver<S>) {}

  /** Registers the socket; true when it is the user's first socket in this process. */
  add(socket: S): boolean {
    this.count++;
    let users = this.tenants.get(socket.tenant);
    if (users === undefined) {
      users = new Map();
      this.tenants.set(socket.tenant, users);
    }
    const held = users.get(socket.user);
    if (held === undefined) {
      users.set(socket.user, socket);
      this.userTotal++;
      return true;
    }
    if (Array.isArray(held)) held.push(socket);
    else users.set(socket.user, [held, socket]);
    return false;
  }

  /** Forgets the socket; true when it was the user's last socket in this process. */
  remove(socket: S): boolean {
    const users = this.tenants.get(socket.tenant);
    const held = users?.get(socket.user);
    if (users === undefined || held === undefined) return false;
    if (!Array.isArray(held)) {
      if (held !== socket) return false;
      this.count--;
      this.userTotal--;
      users.delete(socket.user);
      if (users.size === 0) this.tenants.delete(socket.tenant);
      return true;
    }
    const at = held.indexOf(socket);
    if (at < 0) return false;
    this.count--;
    held.splice(at, 1);
    if (held.length === 1) users.set(socket.user, held[0]!);
    return false;
  }

  /** Sockets registered in this process. */
  get socketCount(): number {
    return this.count;
  }

  /** Users with at least one socket in this process. */
  get userCount(): number {
    return this.userTotal;
  }

  has(tenant: string, user: string): boolean {
    return this.tenants.get(tenant)?.has(user) === true;
  }

  deliver(tenant: string, user: string, data: Uint8Array): boolean {
    const held = this.tenants.get(tenant)?.get(user);
    if (held === undefined) return false;
    let cached: unknown;
    const decoded = () => {
      cached ??= msgpackDecode(data);
      return cached;
    };
    if (!Array.isArray(held)) {
      this.deliverTo(held, data, decoded);
      return true;
    }
    // A delivery can close a socket (slow consumer), and closing removes it from the array
    // synchronously: iterate over a copy, or the next one is skipped.
    for (const s of held.slice()) this.deliverTo(s, data, decoded);
    return true;
  }

  forEachUser(fn: (tenant: string, user: string) => void): void {
    for (const [tenant, users] of this.tenants) for (const user of users.keys()) fn(tenant, user);
  }
}
