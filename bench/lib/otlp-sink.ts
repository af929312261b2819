/**
 * An OTLP/HTTP endpoint that accepts trace exports and throws them away, counting requests and bytes:
 * what `e2e --trace-sample` points the broker's exporter at, so the bench measures the broker's cost
 * of tracing (spans, context propagation, serialisation, the export requests) without a collector.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpSink {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (exports go to <url>/v1/traces). */
  readonly url: string;
  stats(): { requests: number; bytes: number };
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  let requests = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    req.on('end', () => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats: () => ({ requests, bytes }),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** The broker environment that turns tracing on at `ratio` (0..1) of new traces, exporting to `sink`. */
export function tracingEnv(sink: OtlpSink, ratio: number): NodeJS.ProcessEnv {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: String(ratio),
  };
}

/** `--trace-sample`: a ratio from 0 to 1 (0.01 = 1 % of messages traced). */
export function parseTraceRatio(value: string): number {
  const n = value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error('must be a ratio from 0 to 1');
  return n;
}
