/**
 * A process's sockets per user (src/gateway/sessions.ts): first and last socket of a user (what presence
 * announces), delivery to every socket of a user, and a socket closed during a delivery.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { type SessionSocket, Sessions } from '../../src/gateway/sessions.js';
import { msgpackEncode } from '../../src/protocol/codec.js';

type Sock = SessionSocket & { id: number };
const sock = (id: number, tenant: string, user: string): Sock => ({ id, tenant, user, role: 'visitor' });

test('sessions - add and remove tell the first and the last socket of a user', () => {
  const s = new Sessions<Sock>(() => {});
  const [a1, a2, b1] = [sock(1, 't', 'a'), sock(2, 't', 'a'), sock(3, 'u', 'a')];
  assert.equal(s.add(a1), true);
  assert.equal(s.add(a2), false, 'a second socket of the same user');
  assert.equal(s.add(b1), true, 'the same user id in another tenant is another user');
  assert.equal(s.socketCount, 3);
  assert.equal(s.userCount, 2);
  assert.equal(s.remove(a1), false, 'a2 is still open');
  assert.equal(s.remove(a1), false, 'removing twice changes nothing');
  assert.equal(s.remove(a2), true);
  assert.equal(s.has('t', 'a'), false);
  assert.equal(s.has('u', 'a'), true);
  const users: string[] = [];
  s.forEachUser((t, u) => users.push(`${t}/${u}`));
  assert.deepEqual(users, ['u/a']);
  assert.equal(s.remove(b1), true);
  assert.equal(s.socketCount, 0);
});

test('sessions - a frame reaches every socket of the user; one closing during delivery skips no other', () => {
  const got: number[] = [];
  const s: Sessions<Sock> = new Sessions<Sock>((socket, _bytes, decoded) => {
    got.push(socket.id);
    assert.deepEqual(decoded(), { type: 'typing', conv: 'c' });
    if (socket.id === 1) s.remove(socket); // a slow consumer closed by this very send
  });
  for (const id of [1, 2, 3]) s.add(sock(id, 't', 'a'));
  s.add(sock(4, 't', 'b'));
  assert.equal(s.deliver('t', 'a', msgpackEncode({ type: 'typing', conv: 'c' })), true);
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(s.deliver('t', 'nobody', new Uint8Array([0xc0])), false);
  assert.equal(s.socketCount, 3);
});
