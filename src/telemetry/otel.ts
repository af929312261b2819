/**
 * The OpenTelemetry SDK behind ./tracing.ts: a NodeTracerProvider (AsyncLocalStorage context, so
 * work started inside a span is its child across awaits), W3C trace-context propagation, a sampler
 * from OTEL_TRACES_SAMPLER, a batch span processor and the OTLP/HTTP (JSON) exporter. Loaded only when
 * tracing is on. The only module importing `@opentelemetry/*`.
 */
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  InMemorySpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type {
  SpanKind as OurKind,
  TraceContext,
  TraceSpan,
  TracingBackend,
  TracingConfig,
} from './tracing.js';

const TRACER_NAME = 'switchboard';
const KINDS: Record<OurKind, SpanKind> = {
  internal: SpanKind.INTERNAL,
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
};

function samplerOf(config: Readonly<TracingConfig>): Sampler {
  const ratio = new TraceIdRatioBasedSampler(config.samplerRatio);
  switch (config.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** A finished span as tests read it (from the SDK's in-memory exporter). */
export interface FinishedSpan {
  name: string;
  traceId: string;
  spanId: string;
  /** Undefined for a root span. */
  parentSpanId: string | undefined;
  kind: OurKind;
  attributes: Record<string, unknown>;
  /** service.instance.id of the process that recorded it. */
  instance: string;
}

export interface OtelBackendOptions {
  /** Keep finished spans in memory (the SDK's InMemorySpanExporter) instead of exporting them. */
  inMemory?: boolean;
}

export interface OtelBackend extends TracingBackend {
  /** The spans kept in memory so far (only with `inMemory`). */
  finishedSpans(): FinishedSpan[];
}

/** Builds the SDK pipeline for `config` and registers it as this process's global tracer provider. */
export function createOtelBackend(
  config: Readonly<TracingConfig>,
  instanceId: string,
  opts: OtelBackendOptions = {},
): OtelBackend {
  const memory = opts.inMemory ? new InMemorySpanExporter() : undefined;
  const exporter: SpanExporter =
    memory ??
    (config.exporter === 'console'
      ? new ConsoleSpanExporter()
      : new OTLPTraceExporter({ url: config.endpoint, headers: { ...config.headers } }));
  const processor: SpanProcessor = memory
    ? new SimpleSpanProcessor(memory)
    : new BatchSpanProcessor(exporter, {
        scheduledDelayMillis: config.batchDelayMs,
        maxQueueSize: config.maxQueueSize,
      });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      ...config.resourceAttributes,
      'service.name': config.serviceName,
      'service.instance.id': instanceId,
    }),
    sampler: samplerOf(config),
    spanProcessors: [processor],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  const tracer = provider.getTracer(TRACER_NAME);
  const asCtx = (c: TraceContext | undefined): Context =>
    c === undefined ? context.active() : (c as unknown as Context);

  return {
    start(name, kind, attributes, parent) {
      const span: Span = tracer.startSpan(name, { kind: KINDS[kind], attributes }, asCtx(parent));
      const ctx = trace.setSpan(asCtx(parent), span);
      let ended = false;
      const handle: TraceSpan = {
        context: ctx as unknown as TraceContext,
        run: (fn) => context.with(ctx, fn),
        end(error) {
          if (ended) return;
          ended = true;
          if (error !== undefined) {
            span.recordException(error instanceof Error ? error : String(error));
            span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode(error) });
          }
          span.end();
        },
      };
      return handle;
    },
    active: () => context.active() as unknown as TraceContext,
    inTrace: () => trace.getSpan(context.active()) !== undefined,
    root: () => ROOT_CONTEXT as unknown as TraceContext,
    inject(carrier, ctx) {
      propagation.inject(asCtx(ctx), carrier);
    },
    extract(get) {
      return propagation.extract(context.active(), undefined, {
        get: (_carrier, key) => get(key),
        keys: () => [],
      }) as unknown as TraceContext;
    },
    flush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
    finishedSpans: () => (memory ? memory.getFinishedSpans().map(finished) : []),
  };
}

function errorCode(error: unknown): string {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string')
    return error.code;
  return error instanceof Error ? error.message : String(error);
}

function finished(s: ReadableSpan): FinishedSpan {
  const kinds = Object.entries(KINDS) as Array<[OurKind, SpanKind]>;
  return {
    name: s.name,
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parentSpanId: s.parentSpanContext?.spanId,
    kind: kinds.find(([, k]) => k === s.kind)?.[0] ?? 'internal',
    attributes: { ...s.attributes },
    instance: String(s.resource.attributes['service.instance.id'] ?? ''),
  };
}
