import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEventPublisher, type OutEvent } from '../../src/integration/events.js';
import {
  consumesOutEvent,
  EMPTY_INTEGRATION,
  type TenantIntegration,
} from '../../src/integration/settings.js';

const hook = (events: string[]) => ({ id: 'h', url: 'http://127.0.0.1:1/', secret: 'x'.repeat(16), events });
const tenant = (t: Partial<TenantIntegration>): TenantIntegration => ({ ...EMPTY_INTEGRATION, ...t });

test('out events - who consumes a type: webhooks wanting it, or a declared consumer', () => {
  const cases: [string, TenantIntegration, boolean][] = [
    ['nothing configured', tenant({}), false],
    ['a webhook of every type', tenant({ webhooks: [hook([])] }), true],
    ['a webhook of closed only', tenant({ webhooks: [hook(['closed'])] }), false],
    ['a webhook of message', tenant({ webhooks: [hook(['closed', 'message'])] }), true],
    ['a webhook of *', tenant({ webhooks: [hook(['*'])] }), true],
    ['a declared consumer of message', tenant({ outEvents: ['message'] }), true],
    ['a declared consumer of >', tenant({ outEvents: ['>'] }), true],
    ['a declared consumer of rated', tenant({ outEvents: ['rated'] }), false],
  ];
  for (const [name, t, want] of cases) assert.equal(consumesOutEvent(t, 'message'), want, name);
});

test('out events - message events are published only when consumed; lifecycle events always', () => {
  const published: string[] = [];
  const sink = { publish: (subject: string) => published.push(subject) };
  const names = { outSubject: (t: string, type: string) => `sb.out.${t}.${type}` };
  const consumers = new Set(['loud']);
  const pub = createEventPublisher(
    sink,
    names,
    undefined,
    () => {},
    (t) => consumers.has(t),
  );
  const base = { id: '01', conv: 'c', ts: 1 };
  const message = (t: string): OutEvent => ({
    ...base,
    tenant: t,
    type: 'message',
    seq: 1,
    msgId: 'm',
    from: 'v',
    role: 'visitor',
    body: 'hi',
  });
  pub.emit(message('quiet'), true);
  pub.emit(message('loud'), true);
  pub.emit({ ...base, tenant: 'quiet', type: 'rated', visitor: 'v', score: 5, comment: null });
  assert.deepEqual(published, ['sb.out.loud.message', 'sb.out.quiet.rated']);
});
