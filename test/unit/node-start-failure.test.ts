/** A node whose start fails says so in its log, with the steps that had ended and the error's stack. */
import * as assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../src/config.js';
import { startNode } from '../../src/node.js';

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('node start - a start that fails logs "node start failed" with the steps that ended and the stack', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });
  const config = parseConfig({
    nodeId: 'start-fails',
    http: { host: '127.0.0.1', port: 0 },
    // Nothing listens there: the NATS connect is refused, after the tenants step has ended.
    nats: { servers: [`nats://127.0.0.1:${await closedPort()}`] },
    logLevel: 'warn',
  });
  await assert.rejects(startNode(config, pino({ level: 'warn' }, sink)));
  const fatal = lines.find((l) => l['msg'] === 'node start failed');
  assert.ok(fatal, `a fatal line was logged: ${JSON.stringify(lines)}`);
  assert.equal(fatal['level'], 60);
  const steps = fatal['startMs'] as Record<string, number>;
  assert.ok(typeof steps['tenants'] === 'number', 'the tenants step had ended');
  assert.equal(steps['nats'], undefined, 'the NATS step had not');
  const err = fatal['err'] as { message?: string; stack?: string };
  assert.ok(typeof err.stack === 'string' && err.stack.length > 0, 'the error carries its stack');
});
