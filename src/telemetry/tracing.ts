/**
 * Traces of a message's way (issue 16): the hooks the rest of the broker calls, and the switch that
 * turns them on. Off by default; then every hook is a branch on one module variable and a direct call
 * (no span, no allocation, no AsyncLocalStorage). On (startTracing with an enabled config), the
 * OpenTelemetry SDK is loaded from ./otel.ts — the only module importing `@opentelemetry/*` — and
 * spans are exported over OTLP.
 *
 * Hooks in the code carry a `// trace:` comment. Context crosses NATS in W3C `traceparent` /
 * `tracestate` headers (./nats.ts wraps the transport) and HTTP webhooks in the same headers.
 */

/** An opaque captured trace context (an OpenTelemetry Context when tracing is on). */
export type TraceContext = { readonly __traceContext: unique symbol };

export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';

/** A started span. */
export interface TraceSpan {
  /** This span as a parent for later work. */
  readonly context: TraceContext;
  /** Runs `fn` with this span active (work it starts, awaited or not, becomes its children). */
  run<R>(fn: () => R): R;
  /** Ends the span; an error marks it failed. Later calls are ignored. */
  end(error?: unknown): void;
}

/** What a tracing backend offers (./otel.ts implements it; tests may substitute one). */
export interface TracingBackend {
  /** Starts a span, child of `parent` when given, else of the active context. */
  start(
    name: string,
    kind: SpanKind,
    attributes: Readonly<Record<string, string | number>>,
    parent?: TraceContext,
  ): TraceSpan;
  /** The active context (to carry across a queue). */
  active(): TraceContext;
  /** True when the active context holds a span (work inside a traced step). */
  inTrace(): boolean;
  /** A context without any span: a span started under it begins a new trace. */
  root(): TraceContext;
  /** Writes the propagation headers of `ctx` (default: the active context) into `carrier`. */
  inject(carrier: Record<string, string>, ctx?: TraceContext): void;
  /** The context carried by headers (`get` reads one header by lower-case name). */
  extract(get: (name: string) => string | undefined): TraceContext;
  /** Exports every finished span still buffered. */
  flush(): Promise<void>;
  /** Flushes and stops; the hooks are off afterwards. */
  shutdown(): Promise<void>;
}

/** Tracing settings (from the standard OTEL_* variables, read in src/config.ts). */
export interface TracingConfig {
  enabled: boolean;
  /** `otlp` (OTLP/HTTP, JSON), `console` (spans on stdout, for a look by hand). */
  exporter: 'otlp' | 'console';
  /** Full URL of the OTLP traces endpoint, e.g. http://collector:4318/v1/traces. */
  endpoint: string;
  /** Extra headers of each export request (OTEL_EXPORTER_OTLP_HEADERS). */
  headers: Readonly<Record<string, string>>;
  sampler:
    | 'always_on'
    | 'always_off'
    | 'traceidratio'
    | 'parentbased_always_on'
    | 'parentbased_always_off'
    | 'parentbased_traceidratio';
  /** Ratio of traces kept by the *traceidratio samplers, 0..1. */
  samplerRatio: number;
  serviceName: string;
  resourceAttributes: Readonly<Record<string, string>>;
  /** Longest wait before finished spans are exported, ms (OTEL_BSP_SCHEDULE_DELAY). */
  batchDelayMs: number;
  /** Spans buffered before new ones are dropped (OTEL_BSP_MAX_QUEUE_SIZE). */
  maxQueueSize: number;
}

let backend: TracingBackend | undefined;

/** True while tracing is on in this process. */
export function tracingOn(): boolean {
  return backend !== undefined;
}

/** The backend while tracing is on (for ./nats.ts), else undefined. */
export function tracingBackend(): TracingBackend | undefined {
  return backend;
}

/**
 * Turns tracing on for this process when `config.enabled` (loads the SDK), under resource attribute
 * `service.instance.id = instanceId`. Resolves false when it stays off. `backendOverride` is for tests.
 */
export async function startTracing(
  config: Readonly<TracingConfig>,
  instanceId: string,
  backendOverride?: TracingBackend,
): Promise<boolean> {
  if (backend !== undefined) return true;
  if (backendOverride) {
    backend = backendOverride;
    return true;
  }
  if (!config.enabled) return false;
  const { createOtelBackend } = await import('./otel.js');
  backend = createOtelBackend(config, instanceId);
  return true;
}

/** Exports what is buffered and turns tracing off. Resolves at once when it was off. */
export async function stopTracing(): Promise<void> {
  const b = backend;
  backend = undefined;
  await b?.shutdown();
}

/**
 * The hook around one step of a message's way: runs `fn(a, b)` in a span named `name` (attributes
 * `sb.tenant`, `sb.id`), child of `parent` when given, else of the active span, and ends the span
 * when the returned promise settles. Off: exactly `fn(a, b)`.
 */
export function traced<A, B, R>(
  name: string,
  tenant: string,
  id: string,
  fn: (a: A, b: B) => Promise<R>,
  a: A,
  b: B,
  parent?: TraceContext,
): Promise<R> {
  if (backend === undefined) return fn(a, b);
  const span = backend.start(name, 'internal', { 'sb.tenant': tenant, 'sb.id': id }, parent);
  let p: Promise<R>;
  try {
    p = span.run(() => fn(a, b));
  } catch (err) {
    span.end(err);
    throw err;
  }
  p.then(
    () => span.end(),
    (err: unknown) => span.end(err),
  );
  return p;
}

/** The active context, to hand to `traced` after a queue (a mailbox); undefined when off. */
export function traceContext(): TraceContext | undefined {
  return backend?.active();
}

/** The context carried by W3C trace headers (from traceHeaders), for `traced`; undefined when off. */
export function contextFromHeaders(
  headers: Readonly<Record<string, string>> | undefined,
): TraceContext | undefined {
  if (backend === undefined || headers === undefined) return undefined;
  return backend.extract((name) => headers[name]);
}

/** W3C trace headers of the active span for an outgoing HTTP request; undefined when off. */
export function traceHeaders(): Record<string, string> | undefined {
  if (backend === undefined) return undefined;
  const h: Record<string, string> = {};
  backend.inject(h);
  return h;
}
