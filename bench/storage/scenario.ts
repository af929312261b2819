/**
 * The storage bench: the history store and the worker pool measured directly (no broker, no sockets),
 * against the Cassandra given by --cassandra (reused when it answers, else started).
 *
 * - write: rows/s through the batching writer with appends kept at its bound of rows in flight (bodies
 *   compressed on the pool, as a node does), and the append latency (until durable);
 * - history pages: latency of a 50-message first page and of sync, uncached (Cassandra) and cached
 *   (the owner's tail cache), and of a page read deeper in the conversation;
 * - bytes: message body bytes stored versus raw UTF-8 on the realistic chat sample;
 * - decode: a page of stored bodies decoded inline versus on the pool (why reads decode inline);
 * - filter throughput of one worker thread: texts/s of `filter`, `policy` and `pii` micro-batched.
 */
import { performance } from 'node:perf_hooks';
import { createTextPool } from '../../src/pool/text-pool.js';
import { shardOf } from '../../src/routing/shard.js';
import { decodeBody, poolEncoder } from '../../src/store/body-codec.js';
import { CachedHistoryStore } from '../../src/store/cache.js';
import { dropKeyspace, openCassandraStore } from '../../src/store/cassandra-store.js';
import type { MessageRow } from '../../src/store/types.js';
import { CHAT_SAMPLE } from '../../test/fixtures/chat-sample.js';
import { compressBodies, DEFAULT_BODY_ENC } from '../../workers/compression.js';
import type { CommonOptions } from '../lib/common.js';
import { type LatencySummary, newHistogram, recordMs, summarize } from '../lib/histogram.js';
import { ensureServers } from '../lib/servers.js';
import { mdTable, type ReportHeader, reportHeader, reportPaths, writeReport } from '../report/write.js';

export interface StorageOptions {
  /** Rows written in the write phase. */
  rows: number;
  /** Conversations they are spread over. */
  conversations: number;
  /** Writer bound: rows queued + executing (appends are kept at this many in flight). */
  maxPendingRows: number;
  /** Page reads per measured kind. */
  pageReads: number;
  /** Texts per filter-throughput op. */
  filterTexts: number;
}

export const DEFAULT_STORAGE_OPTIONS: StorageOptions = {
  rows: 100_000,
  conversations: 1000,
  maxPendingRows: 2000,
  pageReads: 2000,
  filterTexts: 100_000,
};

export interface StorageReport extends ReportHeader<'storage'> {
  options: StorageOptions;
  write: { rows: number; seconds: number; rowsPerS: number; appendLatency: LatencySummary; retries: number };
  pages: Record<
    'firstPageUncached' | 'firstPageCached' | 'syncUncached' | 'syncCached' | 'deepPage',
    LatencySummary
  >;
  cache: { hits: number; misses: number; bytes: number };
  bytes: {
    messages: number;
    rawBytesPerMessage: number;
    storedBytesPerMessage: number;
    ratio: number;
    compressedShare: number;
  };
  decode: { inlineUsPerPage: number; poolUsPerPage: number };
  filter: Record<'filter' | 'policy' | 'pii', { textsPerS: number; meanBatch: number }>;
}

const PAGE = 50;

function sampleRow(conv: string, seq: number): MessageRow {
  const body = CHAT_SAMPLE[(seq * 7 + conv.length) % CHAT_SAMPLE.length] ?? 'hello';
  return {
    tenant: 'bench',
    conv,
    seq,
    id: `01BENCH${String(seq).padStart(19, '0')}`,
    sender: seq % 2 === 0 ? 'agent-1' : 'visitor-1',
    senderRole: seq % 2 === 0 ? 'agent' : 'visitor',
    cmid: `m${seq}`,
    body,
    ts: Date.now(),
  };
}

async function timed<T>(h: ReturnType<typeof newHistogram>, run: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await run();
  recordMs(h, performance.now() - t0);
  return out;
}

export async function storageScenario(
  common: CommonOptions,
  opts: StorageOptions,
  signal?: AbortSignal,
): Promise<{ report: StorageReport; files: string[]; summary: string }> {
  const startedAt = new Date();
  const log = (line: string) => {
    if (!common.quiet) process.stderr.write(`storage: ${line}\n`);
  };
  // Reuses the given Cassandra when it answers, else starts the local stack (stopped at the end).
  const servers = await ensureServers({ natsUrl: common.natsUrl, cassandra: common.cassandra, say: log });
  const keyspace = `${common.keyspace}_storage`.slice(0, 48);
  const pool = createTextPool({ threads: 1, maxQueue: 512, batchTexts: 64, intervalMs: 1 });
  const options = { contactPoints: [servers.cassandra], localDataCenter: 'datacenter1', keyspace };
  const store = await openCassandraStore(
    { ...options, writer: { maxPendingRows: opts.maxPendingRows } },
    { encoder: poolEncoder(pool) },
  );
  try {
    // ---- write: appends kept at the writer's bound, each conversation in seq order like its actor.
    log(`writing ${opts.rows} rows over ${opts.conversations} conversations`);
    const appendLatency = newHistogram();
    const nextSeq = new Map<string, number>();
    let issued = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (issued < opts.rows && !signal?.aborted) {
        const conv = `c${issued % opts.conversations}`;
        issued++;
        const seq = (nextSeq.get(conv) ?? 0) + 1;
        nextSeq.set(conv, seq);
        await timed(appendLatency, () => store.append(sampleRow(conv, seq)));
      }
    };
    // One appender per conversation at most, up to the writer's bound.
    await Promise.all(
      Array.from({ length: Math.min(opts.maxPendingRows, opts.conversations) }, () => worker()),
    );
    const seconds = (performance.now() - t0) / 1000;
    const written = [...nextSeq.values()].reduce((a, b) => a + b, 0);
    const write = {
      rows: written,
      seconds,
      rowsPerS: written / seconds,
      appendLatency: summarize(appendLatency),
      retries: store.stats().retries,
    };
    log(`${Math.round(write.rowsPerS)} rows/s`);

    // ---- pages: the same reads uncached and through the owner's cache (warmed by activation).
    const cache = new CachedHistoryStore(store, {
      maxBytes: 64 * 1024 * 1024,
      tailMessages: 100,
      shardOf,
      holds: () => true,
    });
    const convs = [...nextSeq.keys()];
    for (const conv of convs) await cache.loadSnapshot('bench', conv, 16);
    const h = {
      firstPageUncached: newHistogram(),
      firstPageCached: newHistogram(),
      syncUncached: newHistogram(),
      syncCached: newHistogram(),
      deepPage: newHistogram(),
    };
    log(`reading ${opts.pageReads} pages of each kind`);
    for (let i = 0; i < opts.pageReads && !signal?.aborted; i++) {
      const conv = convs[i % convs.length]!;
      const last = nextSeq.get(conv)!;
      const since = Math.max(0, last - 20);
      await timed(h.firstPageUncached, () => store.page('bench', conv, undefined, PAGE));
      await timed(h.firstPageCached, () => cache.page('bench', conv, undefined, PAGE));
      await timed(h.syncUncached, () => store.after('bench', conv, since, 100));
      await timed(h.syncCached, () => cache.after('bench', conv, since, 100));
      await timed(h.deepPage, () => store.page('bench', conv, Math.max(2, Math.floor(last / 2)), PAGE));
    }
    const pages = {
      firstPageUncached: summarize(h.firstPageUncached),
      firstPageCached: summarize(h.firstPageCached),
      syncUncached: summarize(h.syncUncached),
      syncCached: summarize(h.syncCached),
      deepPage: summarize(h.deepPage),
    };

    // ---- bytes on the realistic sample (the body column as written).
    const stored = compressBodies(CHAT_SAMPLE, DEFAULT_BODY_ENC);
    const raw = CHAT_SAMPLE.reduce((sum, t) => sum + Buffer.byteLength(t, 'utf8'), 0);
    const packed = stored.reduce((sum, b) => sum + b.data.byteLength, 0);
    const bytes = {
      messages: CHAT_SAMPLE.length,
      rawBytesPerMessage: raw / CHAT_SAMPLE.length,
      storedBytesPerMessage: packed / CHAT_SAMPLE.length,
      ratio: packed / raw,
      compressedShare: stored.filter((b) => b.enc !== 0).length / stored.length,
    };

    // ---- decode a page of 50 stored bodies: inline vs on the pool.
    const pageBodies = stored.slice(0, PAGE);
    const rounds = 200;
    let t = performance.now();
    for (let r = 0; r < rounds; r++) {
      for (const b of pageBodies)
        decodeBody(b.enc, Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
    }
    const inlineUsPerPage = ((performance.now() - t) * 1000) / rounds;
    t = performance.now();
    for (let r = 0; r < rounds; r++) await Promise.all(pageBodies.map((b) => pool.decompress(b)));
    const poolUsPerPage = ((performance.now() - t) * 1000) / rounds;

    // ---- filter throughput of one worker thread, micro-batched.
    const texts = Array.from({ length: opts.filterTexts }, (_, i) => CHAT_SAMPLE[i % CHAT_SAMPLE.length]!);
    const policy = {
      version: 'bench',
      rules: [
        { words: ['idiot', 'stupid', '傻瓜', '笨蛋'], action: 'mask' as const },
        { words: ['scam', '骗子'], action: 'block' as const },
        { words: ['refund', '退款', '投诉'], action: 'review' as const },
      ],
    };
    const filter = {} as StorageReport['filter'];
    for (const op of ['filter', 'policy', 'pii'] as const) {
      const before = pool.stats();
      const t1 = performance.now();
      // In slices, so the pool's bounded buffer is never exceeded.
      for (let i = 0; i < texts.length; i += 8192) {
        const slice = texts.slice(i, i + 8192);
        await Promise.all(
          slice.map((text) =>
            op === 'filter'
              ? pool.filter(text)
              : op === 'policy'
                ? pool.policy('bench', policy, text)
                : pool.pii(text),
          ),
        );
      }
      const s = (performance.now() - t1) / 1000;
      const after = pool.stats();
      filter[op] = {
        textsPerS: texts.length / s,
        meanBatch: (after.completed - before.completed) / Math.max(1, after.tasks - before.tasks),
      };
      log(`${op}: ${Math.round(filter[op].textsPerS)} texts/s per worker`);
    }

    const report: StorageReport = {
      ...reportHeader('storage', startedAt, common.command),
      options: opts,
      write,
      pages,
      cache: (({ hits, misses, bytes: b }) => ({ hits, misses, bytes: b }))(cache.stats()),
      bytes,
      decode: { inlineUsPerPage, poolUsPerPage },
      filter,
    };
    const paths = reportPaths(common.out, 'storage', startedAt);
    const files = writeReport(paths, report, markdown(report), []);
    const summary = `storage: ${Math.round(write.rowsPerS)} rows/s, first page p50 ${pages.firstPageUncached.p50Ms.toFixed(2)} ms uncached / ${pages.firstPageCached.p50Ms.toFixed(3)} ms cached, ${bytes.storedBytesPerMessage.toFixed(1)} of ${bytes.rawBytesPerMessage.toFixed(1)} bytes per message`;
    return { report, files, summary };
  } finally {
    await store.close();
    await pool.close();
    await dropKeyspace(options).catch(() => undefined);
    await servers.stop();
  }
}

const ms = (s: LatencySummary) => [s.p50Ms, s.p90Ms, s.p99Ms, s.maxMs].map((v) => v.toFixed(3));

function markdown(r: StorageReport): string {
  const p = r.pages;
  return `# Storage bench — ${r.startedAt}

Command: \`${r.command}\` · machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB

## Writes (batching writer, ${r.options.maxPendingRows} rows in flight, bodies compressed on the pool)

${mdTable(
  ['rows', 'seconds', 'rows/s', 'append p50 ms', 'p90', 'p99', 'max', 'retries'],
  [
    [
      r.write.rows,
      r.write.seconds.toFixed(1),
      Math.round(r.write.rowsPerS),
      ...ms(r.write.appendLatency),
      r.write.retries,
    ],
  ],
)}

## History reads (${PAGE}-message pages, sync of the last 20)

${mdTable(
  ['read', 'p50 ms', 'p90', 'p99', 'max'],
  [
    ['first page, Cassandra', ...ms(p.firstPageUncached)],
    ['first page, cache', ...ms(p.firstPageCached)],
    ['sync, Cassandra', ...ms(p.syncUncached)],
    ['sync, cache', ...ms(p.syncCached)],
    ['page in the middle (Cassandra)', ...ms(p.deepPage)],
  ],
)}

Cache: ${r.cache.hits} hits, ${r.cache.misses} misses, ${(r.cache.bytes / 1024 / 1024).toFixed(1)} MiB held.

## Bytes per message (body column, ${r.bytes.messages} realistic chat messages)

${mdTable(
  ['raw UTF-8', 'stored', 'ratio', 'rows compressed'],
  [
    [
      r.bytes.rawBytesPerMessage.toFixed(1),
      r.bytes.storedBytesPerMessage.toFixed(1),
      r.bytes.ratio.toFixed(3),
      `${(r.bytes.compressedShare * 100).toFixed(0)}%`,
    ],
  ],
)}

## Decoding a page of ${PAGE} stored bodies

${mdTable(['inline µs/page', 'pool µs/page'], [[r.decode.inlineUsPerPage.toFixed(0), r.decode.poolUsPerPage.toFixed(0)]])}

## Text ops per worker thread (micro-batched)

${mdTable(
  ['op', 'texts/s', 'mean texts per task'],
  (['filter', 'policy', 'pii'] as const).map((op) => [
    op,
    Math.round(r.filter[op].textsPerS),
    r.filter[op].meanBatch.toFixed(1),
  ]),
)}
`;
}
