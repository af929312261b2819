/**
 * Which sockets this process holds for which user. Nothing here touches NATS: the cluster learns
 * where a user is from the presence directory (src/presence/), which keeps no per-user interest on
 * NATS. Agents hear only of conversations assigned to them (there is no tenant-wide lobby: the queue
 * actor assigns). Delivered frames arrive as msgpack bytes identical to the wire frame, so msgpack
 * sockets get them without re-encoding.
 */
import { userKey } from '../presence/directory.js';
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
  // One socket, or an array when the user has several: almost every user has one, and an array
  // (or a Set, ~150 bytes more) for each would be paid by every connection.
  private readonly users = new Map<string, S | S[]>();
  private count = 0;

  constructor(private readonly deliverTo: Deliver<S>) {}

  /** Registers the socket; true when it is the user's first socket in this process. */
  add(socket: S): boolean {
    this.count++;
    const key = userKey(socket.tenant, socket.user);
    const held = this.users.get(key);
    if (held === undefined) {
      this.users.set(key, socket);
      return true;
    }
    if (Array.isArray(held)) held.push(socket);
    else this.users.set(key, [held, socket]);
    return false;
  }

  /** Forgets the socket; true when it was the user's last socket in this process. */
  remove(socket: S): boolean {
    const key = userKey(socket.tenant, socket.user);
    const held = this.users.get(key);
    if (held === undefined) return false;
    if (!Array.isArray(held)) {
      if (held !== socket) return false;
      this.count--;
      this.users.delete(key);
      return true;
    }
    const at = held.indexOf(socket);
    if (at < 0) return false;
    this.count--;
    held.splice(at, 1);
    if (held.length === 1) this.users.set(key, held[0]!);
    return false;
  }

  /** Sockets registered in this process. */
  get socketCount(): number {
    return this.count;
  }

  /** Users with at least one socket in this process. */
  get userCount(): number {
    return this.users.size;
  }

  has(tenant: string, user: string): boolean {
    return this.users.has(userKey(tenant, user));
  }

  deliver(tenant: string, user: string, data: Uint8Array): boolean {
    const held = this.users.get(userKey(tenant, user));
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
    for (const held of this.users.values()) {
      const s = Array.isArray(held) ? held[0] : held;
      if (s !== undefined) fn(s.tenant, s.user);
    }
  }
}
