/**
 * Trace context across NATS: a Transport that wraps another one while tracing is on. Publishes and
 * requests made inside a traced step get a producer/client span whose W3C `traceparent` travels in
 * the message headers; a received message that carries one is handled inside a consumer span, child
 * of the sender's. JetStream publishes carry the headers into the stream, so consumers of a stream
 * (business events in, webhooks of the `sb_out` events) continue the trace of whoever published.
 * Traffic outside any trace (leases, presence heartbeats) passes through unchanged.
 */
import type { ConsumerSpec, JetStreamPort, StreamMessage } from '../cluster/jetstream.js';
import type { IncomingMessage, Transport } from '../cluster/transport.js';
import { type TracingBackend, tracingBackend } from './tracing.js';

const TRACEPARENT = 'traceparent';

/** `t` itself while tracing is off; else `t` with trace context in and out of its messages. */
export function traceTransport(t: Transport): Transport {
  const b = tracingBackend();
  return b === undefined ? t : new TracedTransport(t, b);
}

/** Strips a subject to its kind for span names (`sb.shard.12` -> `sb.shard`): names stay few. */
function subjectKind(subject: string): string {
  const parts = subject.split('.');
  return parts.length > 2 ? `${parts[0]}.${parts[1]}` : subject;
}

class TracedTransport implements Transport {
  private js: JetStreamPort | undefined;

  constructor(
    private readonly inner: Transport,
    private readonly b: TracingBackend,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  get onSetupRetry(): Transport['onSetupRetry'] {
    return this.inner.onSetupRetry;
  }

  publish(subject: string, data: Uint8Array, headers?: Record<string, string>): void {
    if (!this.b.inTrace()) {
      this.inner.publish(subject, data, headers);
      return;
    }
    const span = this.b.start(`publish ${subjectKind(subject)}`, 'producer', {
      'messaging.system': 'nats',
      'messaging.destination.name': subject,
    });
    const h = { ...headers };
    this.b.inject(h, span.context);
    try {
      this.inner.publish(subject, data, h);
      span.end();
    } catch (err) {
      span.end(err);
      throw err;
    }
  }

  subscribe(subject: string, handler: (msg: IncomingMessage) => void, opts?: { queue?: string }) {
    return this.inner.subscribe(
      subject,
      (msg) => {
        if (msg.headers?.[TRACEPARENT] === undefined) {
          handler(msg);
          return;
        }
        const parent = this.b.extract((name) => msg.headers?.[name]);
        const span = this.b.start(
          `receive ${subjectKind(msg.subject)}`,
          'consumer',
          { 'messaging.system': 'nats', 'messaging.destination.name': msg.subject },
          parent,
        );
        try {
          span.run(() => handler(msg));
          span.end();
        } catch (err) {
          span.end(err);
          throw err;
        }
      },
      opts,
    );
  }

  async request(
    subject: string,
    data: Uint8Array,
    timeoutMs: number,
    headers?: Record<string, string>,
  ): Promise<Uint8Array> {
    if (!this.b.inTrace()) return this.inner.request(subject, data, timeoutMs, headers);
    const span = this.b.start(`request ${subjectKind(subject)}`, 'client', {
      'messaging.system': 'nats',
      'messaging.destination.name': subject,
    });
    const h = { ...headers };
    this.b.inject(h, span.context);
    try {
      const reply = await this.inner.request(subject, data, timeoutMs, h);
      span.end();
      return reply;
    } catch (err) {
      span.end(err);
      throw err;
    }
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  kv(bucket: string, ttlMs: number) {
    return this.inner.kv(bucket, ttlMs);
  }

  jetstream(): JetStreamPort {
    this.js ??= tracedJetStream(this.inner.jetstream(), this.b);
    return this.js;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  closed(): Promise<void> {
    return this.inner.closed();
  }
}

function tracedJetStream(js: JetStreamPort, b: TracingBackend): JetStreamPort {
  return {
    ensureStream: (spec) => js.ensureStream(spec),
    prepare: (spec) => js.prepare(spec),
    publish(subject, data, msgId, headers) {
      if (!b.inTrace()) return js.publish(subject, data, msgId, headers);
      const h = { ...headers };
      b.inject(h);
      return js.publish(subject, data, msgId, h);
    },
    consume(spec: ConsumerSpec, opts, handler, onError) {
      // Every stored message handled is a span: a business event without a traceparent starts a trace.
      const traced = (m: StreamMessage): Promise<void> => {
        const parent = m.header(TRACEPARENT) === undefined ? undefined : b.extract((n) => m.header(n));
        const span = b.start(
          `consume ${spec.durable}`,
          'consumer',
          {
            'messaging.system': 'nats',
            'messaging.destination.name': m.subject,
            'messaging.message.id': m.msgId ?? '',
          },
          parent ?? b.root(),
        );
        const p = span.run(() => handler(m));
        p.then(
          () => span.end(),
          (err: unknown) => span.end(err),
        );
        return p;
      };
      return js.consume(spec, opts, traced, onError);
    },
  };
}
