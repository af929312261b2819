/**
 * The history writer's grouping and bounds, against a recording sink (the store tests run the same
 * writer on real Cassandra): statements take rows of several conversations, never more than
 * maxBatchRows rows or maxBatchPartitions partitions, each partition's rows adjacent and in order.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  HistoryWriter,
  type HistoryWriterOptions,
  parseWriterLimits,
} from '../../src/store/history-writer.js';
import type { MessageRow } from '../../src/store/types.js';

function row(conv: string, seq: number): MessageRow {
  return {
    tenant: 't',
    conv,
    seq,
    id: `${conv}-${seq}`,
    sender: 'v',
    senderRole: 'visitor',
    cmid: `${conv}-${seq}`,
    body: 'hello',
    ts: seq,
  };
}

class GatedSink {
  readonly statements: MessageRow[][] = [];
  #open: (() => void) | undefined;
  #gate: Promise<void> | undefined = new Promise((r) => {
    this.#open = r;
  });
  async write(rows: readonly MessageRow[]): Promise<void> {
    this.statements.push([...rows]);
    await this.#gate;
  }
  open(): void {
    this.#gate = undefined;
    this.#open?.();
  }
}

function writer(sink: GatedSink, limits: Partial<HistoryWriterOptions> = {}) {
  return new HistoryWriter(sink, {
    ...parseWriterLimits({ maxInFlight: 1, lingerMs: 0, maxBatchRows: 6, maxBatchPartitions: 3, ...limits }),
    partitionOf: (r) => r.conv,
    isRetryable: () => false,
    ...limits,
  });
}

test('history writer - rows queued behind a statement in flight group across conversations within the bounds', async () => {
  const sink = new GatedSink();
  const w = writer(sink);
  const first = w.append(row('a', 1));
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(sink.statements.length, 1, 'the first row goes alone, at once');
  // While it is in flight: 4 conversations x 3 rows queue up.
  const queued = ['b', 'c', 'd', 'e'].flatMap((conv) => [1, 2, 3].map((seq) => w.append(row(conv, seq))));
  sink.open();
  await Promise.all([first, ...queued]);
  const shapes = sink.statements.map((rows) => rows.map((r) => `${r.conv}${r.seq}`).join(' '));
  assert.deepEqual(shapes, ['a1', 'b1 b2 b3 c1 c2 c3', 'd1 d2 d3 e1 e2 e3']);
  for (const rows of sink.statements) {
    assert.ok(rows.length <= 6, 'maxBatchRows');
    assert.ok(new Set(rows.map((r) => r.conv)).size <= 3, 'maxBatchPartitions');
  }
  const stats = w.stats();
  assert.equal(stats.statements, 3);
  assert.equal(stats.rows, 13);
  await w.close();
});

test('history writer - maxBatchPartitions bounds the conversations of one statement', async () => {
  const sink = new GatedSink();
  const w = writer(sink, { maxBatchPartitions: 2, maxBatchRows: 32 });
  const first = w.append(row('a', 1));
  await new Promise((r) => setTimeout(r, 5));
  const queued = ['b', 'c', 'd', 'e', 'f'].map((conv) => w.append(row(conv, 1)));
  sink.open();
  await Promise.all([first, ...queued]);
  assert.deepEqual(
    sink.statements.map((rows) => rows.map((r) => r.conv).join('')),
    ['a', 'bc', 'de', 'f'],
  );
  await w.close();
});

test('history writer - maxBatchPartitions must be a positive integer', () => {
  assert.throws(
    () => parseWriterLimits({ maxBatchPartitions: 0 }),
    /writer.maxBatchPartitions must be a positive integer/,
  );
  assert.equal(parseWriterLimits().maxBatchPartitions, 32);
  assert.equal(parseWriterLimits().maxInFlight, 16);
});
