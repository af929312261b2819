/**
 * The gateway: one uWebSockets.js app serving `/ws/visitor`, `/ws/agent`, the HTTP API and the
 * health endpoints. Authentication happens at upgrade; every frame is decoded, validated and
 * answered (an error frame for bad input, never a crash). This is the only module that loads uWS
 * (socket-outbox.ts uses its types). A socket's outgoing frames are in socket-outbox.ts; what its
 * frames ask (send, sync, the rest) in socket-frames.ts.
 */
import * as uWS from 'uWebSockets.js';
import type { ChatService } from '../chat/service.js';
import type { ClusterNames } from '../cluster/names.js';
import type { Transport } from '../cluster/transport.js';
import type { NodeConfig } from '../config.js';
import type { ContentPolicies } from '../content/policies.js';
import type { DeskService } from '../desk/service.js';
import type { Integration } from '../integration/integration.js';
import { ListenerSeat, type SeatIpc } from '../listener-group.js';
import { type ParentChannel, processChannel } from '../parent-channel.js';
import type { TextPool } from '../pool/text-pool.js';
import type { Presence } from '../presence/presence.js';
import { negotiateSubprotocol } from '../protocol/codec.js';
import { BusyError, SwitchboardError, toSwitchboardError } from '../protocol/errors.js';
import {
  AGENT_ONLY_FRAMES,
  CLOSE_CODES,
  type ErrorFrame,
  frameRef,
  PROTOCOL_VERSION,
  parseClientFrame,
  type ServerFrame,
  VISITOR_ONLY_FRAMES,
} from '../protocol/frames.js';
import type { ReceptionService } from '../reception/service.js';
import type { Dispatcher } from '../routing/dispatcher.js';
import type { HistoryStore } from '../store/types.js';
import { traced } from '../telemetry/tracing.js';
import type { TenantRegistry } from '../tenants.js';
import { type AdmissionStats, drainRetryAfterMs, UpgradeAdmission } from './admission.js';
import { type ApiContext, type ApiHandler, historyHandler } from './api-routes.js';
import type { Authenticator, Principal } from './auth.js';
import {
  agentStatusHandler,
  type ChatRouteContext,
  closeHandler,
  conversationHandler,
  createConversationHandler,
  postMessageHandler,
  queueHandler,
  transferHandler,
  visitorConversationsHandler,
} from './chat-routes.js';
import { deskRouteHandlers } from './desk-routes.js';
import { devTokenHandler } from './dev-tokens.js';
import {
  bearerToken,
  sendErrorBody,
  sendError as sendHttpError,
  sendJson,
  sendText,
  type TrackedResponse,
  track,
} from './http.js';
import { checkOperator, credentialsOf } from './http-auth.js';
import { BucketMap, newBucket, take } from './rate-limit.js';
import { leftMessagesHandler } from './reception-routes.js';
import { HTTP_ROUTES, type RouteKey, routeKey } from './routes.js';
import { Sessions } from './sessions.js';
import { frameHandlers } from './socket-frames.js';
import { resolveMaxSockets } from './socket-limit.js';
import {
  flushOutboxes,
  holdAck,
  queueFrame,
  releaseAcks,
  type SocketData,
  sendBounded,
} from './socket-outbox.js';
import { type AssetName, WebAssets } from './static-files.js';

const UWS_COMPRESSION_DISABLED: uWS.CompressOptions = 0;
export const HARD_FRAME_CAP_FACTOR = 4;
export const TOKEN_SWEEP_INTERVAL_MS = 15_000;
/** How long a client should wait when the HTTP in-flight bound is full. */
export const HTTP_BUSY_RETRY_AFTER_MS = 100;
/**
 * What a `send` refused at the door (gateway.maxSendsInflight) is told: the process is saturated and its
 * queue takes about a second to drain. Every early retry is one more frame for a saturated loop to refuse:
 * at 9 000 msg/s offered to one worker, a refusal after parsing with 500 ms waits (the bench client's
 * retries grow from there) made 23 000 refusals a second and delivered nothing; 2 000 ms before parsing
 * delivered 3 680 msg/s (BENCHMARKS.md, fourteenth session).
 */
export const SENDS_BUSY_RETRY_AFTER_MS = 2000;

/** Whether a browser Origin may open a socket for a tenant (`*` = any); compared case-insensitively. */
export function originAllowed(allowed: readonly string[], origin: string): boolean {
  const o = origin.toLowerCase();
  for (const a of allowed) if (a === '*' || a.toLowerCase() === o) return true;
  return false;
}

export interface GatewayDeps {
  /** Per-tenant sensitive-word policies (src/content/policies.ts). */
  content: ContentPolicies;
  config: Readonly<NodeConfig>;
  auth: Authenticator;
  /** Per-tenant configuration (origins, API keys, rate limits), hot-reloaded. */
  tenants: TenantRegistry;
  dispatcher: Dispatcher;
  chat: ChatService;
  pool: TextPool;
  store: HistoryStore;
  transport: Transport;
  /**
   * Presence (src/presence/presence.ts): each user with a socket here is announced to the owner of its
   * presence shard before `welcome`; pushes for it are handed to this process's sessions.
   */
  presence: Pick<Presence, 'attach' | 'join' | 'leave'>;
  names: ClusterNames;
  ready(): boolean;
  /** Time since this member's last successful lease renewal was sent, ms. */
  leaseAgeMs(): number;
  /** Prometheus exposition text for /metrics. */
  metrics(): Promise<string>;
  /** Records a send frame's arrival-to-answer time, seconds (src/metrics.ts). */
  observeAck?(seconds: number, ok: boolean): void;
  /** This node's view of the cluster, for /readyz and /admin/shards. */
  cluster(): ClusterView;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Business-system integration: the agent frames `context` and `action` (absent: `unavailable`). */
  integration?: Pick<Integration, 'contextFor' | 'action'>;
  /** Notes, recall and edit, labels, canned replies (issue #17; absent: those frames are `unavailable`). */
  desk?: DeskService;
  /** Reception (src/reception/): the visitor frames `leave` and `handoff`, left messages over HTTP. */
  reception?: Pick<ReceptionService, 'leave' | 'visitorAsksForPerson' | 'leftMessages'>;
  /** The channel to the node's supervisor (default `process`; without one the worker never leaves the port). */
  parent?: ParentChannel<SeatIpc>;
}

/** Pushed frames a socket keeps while its `welcome` waits for the presence owner's answer. */
const EARLY_FRAMES_MAX = 64;
/** How often the gateway checks whether this member is cut off from the cluster, ms. */
const CUT_OFF_CHECK_MS = 1000;
/** The retry delay a cut-off node tells a refused upgrade. */
const CUT_OFF_RETRY_AFTER_MS = 1000;
/** The retry delay a worker at its socket limit tells a refused upgrade. */
const FULL_RETRY_AFTER_MS = 1000;
const CUT_OFF_MESSAGE = 'this node is cut off from the cluster; connect to another';
const PACED_MESSAGE = 'this process is admitting upgrades at its pace; retry';
const DRAIN_MESSAGE = 'node shutting down; reconnect after retryAfterMs';

export interface ClusterView {
  members: readonly string[];
  /** Shards whose record is held by a live member, in this node's view (1024 when all are owned). */
  shardsOwned: number;
  /** The shards this node holds. */
  held: number[];
}

/** A decoded frame that names itself a `send` (valid or not: the door only needs to know its kind). */
function isSendFrame(decoded: unknown): boolean {
  return typeof decoded === 'object' && decoded !== null && (decoded as { type?: unknown }).type === 'send';
}

export interface Gateway {
  readonly port: number;
  /** WebSocket connections held now. */
  socketCount(): number;
  /** Upgrade admission counters (admission.ts). */
  upgradeStats(): AdmissionStats;
  /** Socket `send`s in progress now, and those refused `busy` at the door since start (maxSendsInflight). */
  sendStats(): { inflight: number; refused: number };
  /** Whether this worker is in the node's listener group, and how often it left it full (listener-group.ts). */
  listener(): { listening: boolean; leaves: number };
  /** Stops listening and closes every socket with `reconnectElsewhere`. */
  close(): void;
}

export async function startGateway(deps: GatewayDeps): Promise<Gateway> {
  const { config } = deps;
  const app = uWS.App();
  const sockets = new Set<uWS.WebSocket<SocketData>>();
  // Sockets at most, counting upgrades whose token is being checked (issue #14, socket-limit.ts).
  const maxSockets = resolveMaxSockets(config.gateway.maxSockets);
  const fullMessage = `this process holds its limit of ${maxSockets} sockets; retry`;
  let upgrading = 0;
  // Whether this worker listens on the node's port: a full one leaves it, a gateway stands by while its
  // owners are calm (listener-group.ts). Set before the first listen; the handlers below run only after.
  let seat: ListenerSeat | undefined;
  // The node is stopping: its sockets are closed by close() below, and agents' departures are not
  // reported. Each report is a request to the agent's actor, which then tells its tenant's queue; with
  // every member of a restarting node stopping at once those requests waited for their 5 s deadline and
  // held each shard's release (and the restart) that long. The agent's actor forgets this node's sockets
  // on its own once they are not renewed for its presence TTL (actors/agent.ts), and an agent that
  // reconnects elsewhere is announced there.
  let stopping = false;
  const admission = new UpgradeAdmission(
    {
      ratePerS: config.gateway.upgradeRatePerS,
      burst: config.gateway.upgradeBurst,
      maxPending: config.gateway.upgradePending,
      maxRetryAfterMs: config.gateway.upgradeMaxRetryAfterMs,
    },
    Date.now(),
  );
  function admitted(data: SocketData): void {
    if (!data.admitting) return;
    data.admitting = false;
    admission.done(data.admittedAt, Date.now());
  }
  const sendLimit = config.gateway.maxBackpressureBytes;
  const sessions = new Sessions<SocketData>((data, bytes, decodedFrame) => {
    if (data.closed || !data.ws) return;
    const payload = data.codec.binary ? bytes : JSON.stringify(decodedFrame());
    if (!data.welcomed) {
      // Registered, welcome not sent yet (issue #12: `msg` before `welcome` on reconnect).
      data.early ??= [];
      if (data.early.length < EARLY_FRAMES_MAX) data.early.push(payload);
      return;
    }
    // With a send in flight, a delivery may be the sender's own echo: it waits for its ack (queueFrame).
    writeFrame(data, payload, data.inflight > 0);
  });
  deps.presence.attach(sessions);

  /** Writes a frame after any held acks or queued frames (frames keep their order); `toTurnEnd` queues it. */
  function writeFrame(data: SocketData, payload: Uint8Array | string, toTurnEnd: boolean): void {
    if (data.heldAcks) releaseAcks(data, sendLimit, payload);
    else if (toTurnEnd || data.outbox !== undefined) queueFrame(data, payload, sendLimit);
    else sendBounded(data, payload, sendLimit);
  }

  function send(data: SocketData, frame: ServerFrame): void {
    if (data.closed || !data.ws) return;
    writeFrame(data, data.codec.encode(frame), false);
  }

  /**
   * The last frame before a drain's 1012 (docs/PROTOCOL.md, "A minimal client", step 7): when to come
   * back (admission.ts, drainRetryAfterMs). Without it, 100k clients that keep up knock on the closed
   * port until the node is back: ~118k refused connects in a bench storm, whose restart took 22 s
   * instead of 10-12 (issue #14; BENCHMARKS.md, eighteenth session).
   */
  function drainNotice(k: number): ErrorFrame {
    const g = config.gateway;
    const ms = drainRetryAfterMs(k, {
      minMs: g.drainRetryAfterMs,
      ratePerS: g.upgradeRatePerS,
      maxMs: g.upgradeMaxRetryAfterMs,
    });
    return { type: 'error', code: 'unavailable', message: DRAIN_MESSAGE, retryAfterMs: ms };
  }

  function sendError(data: SocketData, err: unknown, ref: string | undefined): void {
    const e = toSwitchboardError(err);
    if (e.code === 'internal') deps.log.warn({ err: e.cause ?? e }, 'internal error answering a frame');
    const frame: ErrorFrame = { type: 'error', code: e.code, message: e.message };
    if (ref !== undefined) frame.ref = ref;
    if (e.retryAfterMs !== undefined) frame.retryAfterMs = e.retryAfterMs;
    send(data, frame);
  }

  const { handleSend, handleOther, handleSync, viewOf } = frameHandlers(deps);

  const tenantFrames = new BucketMap(config.gateway.rateLimitTenants);
  const tenantHttp = new BucketMap(config.gateway.rateLimitTenants);

  // Socket sends of this process in progress (screening, the owner's actor, the write): bounded, so a
  // saturated process says `busy` before it spends anything on a send, instead of queueing it for seconds.
  let sendsInflight = 0;
  let sendsRefused = 0;

  const sendsBusy = new BusyError(
    'sends in flight on this process',
    config.gateway.maxSendsInflight,
    SENDS_BUSY_RETRY_AFTER_MS,
  );

  /**
   * The process has maxSendsInflight sends in progress: this one is answered `busy` before it is
   * validated or screened. Under overload the refusals are most of the frames, so each must cost as
   * little as possible: no parse, and the one prepared error above (never thrown, so no stack per refusal).
   */
  function refuseSend(data: SocketData, decoded: unknown): void {
    sendsRefused++;
    sendError(data, sendsBusy, frameRef(decoded));
  }

  /** 0 when the frame may pass, else ms until it would (connection bucket first, then tenant's). */
  function frameWait(data: SocketData, now: number): number {
    const l = deps.tenants.tenant(data.tenant).rateLimits;
    const wait = take(data.bucket, now, l.connectionFramesPerS, l.connectionBurst);
    if (wait > 0) return wait;
    return -tenantFrames.take(data.tenant, now, l.tenantFramesPerS, l.tenantBurst);
  }

  function onMessage(ws: uWS.WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean): void {
    const data = ws.getUserData();
    if (message.byteLength > config.gateway.maxFrameBytes) {
      ws.end(CLOSE_CODES.tooBig, `frame larger than ${config.gateway.maxFrameBytes} bytes`);
      return;
    }
    const now = Date.now();
    const t0 = performance.now(); // the ack latency histogram starts at the frame's arrival
    if (now >= data.expiresAt) {
      ws.end(CLOSE_CODES.tokenExpired, 'token expired');
      return;
    }
    // Every frame counts, well-formed or not; a refused frame is still decoded for its ref.
    const wait = frameWait(data, now);
    let decoded: unknown;
    try {
      decoded = data.codec.decode(message, isBinary);
      if (wait !== 0) throw rateLimited(wait);
      if (sendsInflight >= config.gateway.maxSendsInflight && isSendFrame(decoded)) {
        refuseSend(data, decoded);
        return;
      }
      const frame = parseClientFrame(decoded, config.gateway.maxBodyChars);
      if (frame.type === 'ping') {
        send(data, frame.ref === undefined ? { type: 'pong' } : { type: 'pong', ref: frame.ref });
        return;
      }
      if (frame.type === 'sync') {
        handleSync(data, frame).then(
          (reply) => send(data, reply),
          (err) => sendError(data, err, undefined),
        );
        return;
      }
      if (frame.type === 'send') {
        // trace: a message's way starts here (src/telemetry/); off = handleSend(data, frame)
        sendsInflight++;
        data.inflight++;
        traced('sb.gateway.send', data.tenant, frame.conv, handleSend, data, frame).then(
          (ack) => {
            sendsInflight--;
            data.inflight--;
            deps.observeAck?.((performance.now() - t0) / 1000, true);
            // Held (<= ACK_HOLD_MS) for the sender's own echo, so both leave in one corked write.
            if (!data.closed && data.ws) holdAck(data, data.codec.encode({ type: 'ack', ...ack }), sendLimit);
          },
          (err) => {
            sendsInflight--;
            data.inflight--;
            deps.observeAck?.((performance.now() - t0) / 1000, false);
            sendError(data, err, frame.cmid);
          },
        );
        return;
      }
      if (AGENT_ONLY_FRAMES.has(frame.type) && data.role !== 'agent')
        throw new SwitchboardError('forbidden', `only agents may send '${frame.type}'`);
      if (VISITOR_ONLY_FRAMES.has(frame.type) && data.role !== 'visitor')
        throw new SwitchboardError('forbidden', `only visitors may send '${frame.type}'`);
      const ref = frameRef(decoded);
      handleOther(data, frame).then(
        (reply) => {
          if (reply) send(data, reply);
        },
        (err) => sendError(data, err, ref),
      );
    } catch (err) {
      sendError(data, wait !== 0 ? rateLimited(wait) : err, frameRef(decoded));
    }
  }

  /** A positive wait is the connection's limit, a negative one the tenant's. */
  function rateLimited(wait: number): SwitchboardError {
    const which = wait > 0 ? 'connection' : 'tenant (on this node)';
    const ms = Math.abs(wait);
    return new SwitchboardError('rate_limited', `${which} frame rate limit; retry after ${ms} ms`, {
      retryAfterMs: ms,
    });
  }

  function sendWelcome(data: SocketData): void {
    data.welcomed = true;
    admitted(data);
    send(data, {
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      node: config.nodeId,
      tenant: data.tenant,
      user: data.user,
      role: data.role,
      maxFrameBytes: config.gateway.maxFrameBytes,
      maxBodyChars: config.gateway.maxBodyChars,
    });
    const early = data.early;
    data.early = undefined;
    if (early !== undefined) for (const payload of early) sendBounded(data, payload, sendLimit);
  }

  function wsRoute(path: string, role: 'visitor' | 'agent'): void {
    app.ws<SocketData>(path, {
      // permessage-deflate stays off (uWS.DISABLED = 0; the typings export it as a type only), so a
      // client cannot use compression to blow up memory.
      compression: UWS_COMPRESSION_DISABLED,
      // uWS drops a connection without a close frame past maxPayloadLength; frames between our limit
      // and this hard cap get a proper 1009 close from onMessage instead.
      maxPayloadLength: config.gateway.maxFrameBytes * HARD_FRAME_CAP_FACTOR,
      idleTimeout: config.gateway.idleTimeoutS,
      // 0 = no uWS limit: sendBounded() enforces maxBackpressureBytes so the 4008 close frame fits.
      maxBackpressure: 0,
      closeOnBackpressureLimit: false,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const t = track(res);
        try {
          upgrade(t, res, req, context);
        } catch (err) {
          sendHttpError(t, err);
        }
      },
      open: (ws) => {
        try {
          open(ws);
        } catch (err) {
          deps.log.warn({ err }, 'could not register a new socket');
          ws.end(CLOSE_CODES.reconnectElsewhere, 'node cannot take sockets right now');
        }
      },
      message: onMessage,
      close: (ws) => {
        const data = ws.getUserData();
        data.closed = true;
        admitted(data);
        sockets.delete(ws);
        seat?.shrank();
        if (sessions.remove(data)) deps.presence.leave(data.tenant, data.user);
        if (data.role === 'agent' && !stopping) agentLeft(data);
      },
    });

    /**
     * A `503 unavailable` with `retryAfterMs` before the token check: the connection is closed after it,
     * so its descriptor is free at once. No Error is built: a storm refuses hundreds of thousands.
     */
    function refuseUpgrade(t: TrackedResponse, message: string, retryAfterMs: number): void {
      t.closeAfter = true;
      sendErrorBody(t, 'unavailable', message, retryAfterMs);
    }

    function upgrade(
      t: TrackedResponse,
      res: uWS.HttpResponse,
      req: uWS.HttpRequest,
      context: uWS.us_socket_context_t,
    ) {
      const key = req.getHeader('sec-websocket-key');
      const protocols = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const origin = req.getHeader('origin');
      const token = bearerToken(req);
      const codec = negotiateSubprotocol(protocols);
      if (!codec) {
        const message = 'offer Sec-WebSocket-Protocol switchboard.v1.msgpack or switchboard.v1.json';
        sendHttpError(t, new SwitchboardError('unsupported_subprotocol', message));
        return;
      }
      if (cutOff()) {
        refuseUpgrade(t, CUT_OFF_MESSAGE, CUT_OFF_RETRY_AFTER_MS);
        return;
      }
      if (sockets.size + upgrading >= maxSockets) {
        refuseUpgrade(t, fullMessage, FULL_RETRY_AFTER_MS);
        seat?.grew(); // asks again if a leave was refused earlier
        return;
      }
      // Before the token is read (issue #14): a storm of reconnects is refused for the price of one
      // short answer, each told a later slot of the schedule (admission.ts).
      const admittedAt = Date.now();
      const refusedRate = admission.stats.refusedRate;
      const retryAfterMs = admission.admit(admittedAt);
      if (retryAfterMs > 0) {
        refuseUpgrade(t, PACED_MESSAGE, retryAfterMs);
        // Pacing for long (a ramp, a storm): the node's gateways take upgrades too (listener-group.ts).
        // Not the in-progress bound: that is this loop slow for a moment (as at a cold start).
        if (admission.stats.refusedRate > refusedRate) seat?.paced();
        return;
      }
      upgrading++;
      seat?.grew();
      // An upgrade that ends without a socket frees its place (one that opens keeps it: no shrank()
      // between the two, or a worker out of the listener group would count one too few and rejoin full).
      const ended = (): void => {
        admission.done(admittedAt, Date.now());
        seat?.shrank();
      };
      deps.auth.verify(token).then(
        (p: Principal) => {
          upgrading--;
          if (t.aborted) {
            ended();
            return;
          }
          if (p.role !== role) {
            ended();
            sendHttpError(t, new SwitchboardError('forbidden', `a ${p.role} token cannot open ${path}`));
            return;
          }
          // Browsers always send Origin on a WebSocket upgrade; other clients need not, and are
          // not subject to the cross-site attacks the allow-list exists for.
          if (origin !== '' && !originAllowed(deps.tenants.tenant(p.tenant).origins, origin)) {
            ended();
            sendHttpError(
              t,
              new SwitchboardError('forbidden', `origin ${origin} is not allowed for this tenant`),
            );
            return;
          }
          const userData: SocketData = {
            tenant: p.tenant,
            user: p.user,
            role: p.role,
            ...(p.roles ? { roles: p.roles } : {}),
            perms: p.perms ?? [],
            codec,
            expiresAt: p.expiresAt,
            bucket: newBucket(deps.tenants.tenant(p.tenant).rateLimits.connectionBurst, Date.now()),
            closed: false,
            announced: false,
            ws: undefined,
            welcomed: false,
            admitting: true,
            admittedAt,
            inflight: 0,
          };
          // Not inside res.cork(): uWS's cork() can misread the socket's state after an asynchronous
          // upgrade (the socket block is reallocated in place) and close the new WebSocket right after
          // `open` — the "rare 1006 before welcome" (uNetworking/uWebSockets#1928, fixed upstream by
          // #1929, not in our uWS build). Uncorked, the 101 is written at once, and uWS prints its
          // cork warning on stderr for every such upgrade (one line each: 4 000 in a 4 000-socket bench).
          res.upgrade(userData, key, codec.subprotocol, extensions, context);
        },
        (err) => {
          upgrading--;
          ended();
          sendHttpError(t, err);
        },
      );
    }
  }

  // Agents' sockets held here, by tenant + user: reported to each agent's actor (presence).
  const agentSockets = new Map<string, { tenant: string; user: string; count: number }>();
  const agentKey = (d: SocketData) => `${d.tenant}\u0000${d.user}`;
  function reportPresence(tenant: string, user: string, count: number): Promise<void> {
    return deps.chat.agentPresence(tenant, user, config.nodeId, count).then(
      () => undefined,
      (err: unknown) => deps.log.warn({ err, tenant, user }, 'agent presence report failed'),
    );
  }
  function agentJoined(data: SocketData): Promise<void> {
    if (data.closed) return Promise.resolve();
    data.announced = true;
    const key = agentKey(data);
    const entry = agentSockets.get(key) ?? { tenant: data.tenant, user: data.user, count: 0 };
    entry.count++;
    agentSockets.set(key, entry);
    return reportPresence(data.tenant, data.user, entry.count);
  }
  function agentLeft(data: SocketData): void {
    if (!data.announced) return;
    data.announced = false;
    const key = agentKey(data);
    const entry = agentSockets.get(key);
    if (!entry) return;
    entry.count--;
    if (entry.count <= 0) agentSockets.delete(key);
    void reportPresence(data.tenant, data.user, Math.max(0, entry.count));
  }
  const presenceBeat = setInterval(() => {
    for (const e of agentSockets.values()) void reportPresence(e.tenant, e.user, e.count);
  }, config.chat.agentPresenceMs);
  presenceBeat.unref();

  function open(ws: uWS.WebSocket<SocketData>): void {
    const data = ws.getUserData();
    data.ws = ws;
    sockets.add(ws);
    const first = sessions.add(data);
    deps.presence
      .join(data.tenant, data.user, first)
      // An agent is announced before `welcome`, so it can be assigned conversations from then on.
      .then(() => (data.role === 'agent' ? agentJoined(data) : undefined))
      .then(
        () => sendWelcome(data),
        (err: unknown) => {
          if (data.closed) return;
          // Busy: the presence directory (or the joins waiting for it) is full; else this member stops.
          // (A join no owner answers in time is welcomed all the same: src/presence/presence.ts.)
          const why = err instanceof BusyError ? 'node full' : 'node shutting down';
          ws.end(CLOSE_CODES.reconnectElsewhere, why);
        },
      );
  }

  // A member that has not renewed its lease for a whole TTL is cut off from the cluster (a
  // partition, NATS lost): it owns nothing and cannot deliver, so its sockets are closed with
  // `reconnectElsewhere` and new ones refused, and clients move to a node that can serve them (issue
  // #12: clients of a cut-off node got `timeout` for the whole cut).
  function cutOff(): boolean {
    return deps.leaseAgeMs() > config.membership.leaseTtlMs;
  }
  const cutOffCheck = setInterval(() => {
    if (!cutOff() || sockets.size === 0) return;
    deps.log.warn(
      { sockets: sockets.size },
      'cut off from the cluster: closing sockets so clients reconnect elsewhere',
    );
    for (const ws of [...sockets]) ws.end(CLOSE_CODES.reconnectElsewhere, 'node cut off from the cluster');
  }, CUT_OFF_CHECK_MS);
  cutOffCheck.unref();

  // Sockets that only receive never pass through onMessage's expiry check: sweep them.
  const expirySweep = setInterval(() => {
    const now = Date.now();
    for (const ws of sockets)
      if (ws.getUserData().expiresAt <= now) ws.end(CLOSE_CODES.tokenExpired, 'token expired');
  }, TOKEN_SWEEP_INTERVAL_MS);
  expirySweep.unref();

  wsRoute('/ws/visitor', 'visitor');
  wsRoute('/ws/agent', 'agent');

  // ---- HTTP ------------------------------------------------------------------------------------
  let httpInflight = 0;
  const api: ApiContext = {
    auth: deps.auth,
    tenants: deps.tenants,
    store: deps.store,
    viewOf,
    limitHttp(tenant) {
      const l = deps.tenants.tenant(tenant).rateLimits;
      const wait = tenantHttp.take(tenant, Date.now(), l.httpRequestsPerS, l.httpBurst);
      if (wait > 0) {
        throw new SwitchboardError(
          'rate_limited',
          `tenant HTTP rate limit (on this node); retry after ${wait} ms`,
          {
            retryAfterMs: wait,
          },
        );
      }
    },
  };

  const chatApi: ChatRouteContext = {
    ...api,
    ...(deps.reception ? { reception: deps.reception } : {}),
    chat: deps.chat,
    maxBodyBytes: config.gateway.maxHttpBodyBytes,
    maxBodyChars: config.gateway.maxBodyChars,
  };

  /** An /api/v1 route: bounded in-flight count (503 busy beyond), errors answered as JSON. */
  function apiRoute(handler: ApiHandler): (res: uWS.HttpResponse, req: uWS.HttpRequest) => void {
    return (res, req) => {
      const t = track(res);
      if (httpInflight >= config.gateway.maxHttpInflight) {
        sendHttpError(
          t,
          new BusyError('HTTP requests in flight', config.gateway.maxHttpInflight, HTTP_BUSY_RETRY_AFTER_MS),
        );
        return;
      }
      httpInflight++;
      // Exactly once: when the handler settles, or when the client goes away first (a handler
      // waiting for a body that never comes would otherwise hold its slot for ever).
      let held = true;
      const release = () => {
        if (held) {
          held = false;
          httpInflight--;
        }
      };
      t.onAbortRelease = release;
      let done: Promise<void>;
      try {
        done = handler(t, req);
      } catch (err) {
        release();
        // Refused before its body was read: do not leave the body to be parsed as the next request.
        t.closeAfter = true;
        sendHttpError(t, err);
        return;
      }
      done.then(release, (err) => {
        release();
        sendHttpError(t, err);
      });
    };
  }

  /** A synchronous route with errors answered as JSON. */
  function plainRoute(handler: (t: TrackedResponse, req: uWS.HttpRequest) => void) {
    return (res: uWS.HttpResponse, req: uWS.HttpRequest) => {
      const t = track(res);
      try {
        handler(t, req);
      } catch (err) {
        sendHttpError(t, err);
      }
    };
  }

  const web = new WebAssets();
  const asset = (name: AssetName) => plainRoute((t, req) => web.serve(t, req, name));
  /** Development mode only (config.auth.devTokens); otherwise the path does not exist. */
  const devOnly = () => {
    if (!config.auth.devTokens) throw new SwitchboardError('not_found', 'no such route');
  };
  const devToken = devTokenHandler(deps.auth);

  const handlers: Record<RouteKey, (res: uWS.HttpResponse, req: uWS.HttpRequest) => void> = {
    'get /healthz': plainRoute((t) => sendJson(t, 200, { status: 'ok', node: config.nodeId })),
    'get /readyz': plainRoute((t) => {
      const ok = deps.ready();
      const { members, shardsOwned, held } = deps.cluster();
      sendJson(t, ok ? 200 : 503, {
        status: ok ? 'ready' : 'not ready',
        node: config.nodeId,
        members,
        shardsOwned,
        shardsHeld: held.length,
        leaseAgeMs: deps.leaseAgeMs(),
      });
    }),
    'get /admin/shards': plainRoute((t, req) => {
      checkOperator(credentialsOf(req), config.admin.token, deps.tenants);
      sendJson(t, 200, { node: config.nodeId, ...deps.cluster() });
    }),
    'get /metrics': plainRoute((t, req) => {
      checkOperator(credentialsOf(req), config.admin.token, deps.tenants);
      deps.metrics().then(
        (text) => sendText(t, 200, text, 'text/plain; version=0.0.4'),
        (err) => sendHttpError(t, err),
      );
    }),
    'post /api/v1/conversations': apiRoute(createConversationHandler(chatApi)),
    'get /api/v1/conversations/:id': apiRoute(conversationHandler(chatApi)),
    'get /api/v1/conversations/:id/messages': apiRoute(historyHandler(api)),
    'post /api/v1/conversations/:id/messages': apiRoute(postMessageHandler(chatApi)),
    'post /api/v1/conversations/:id/close': apiRoute(closeHandler(chatApi)),
    'post /api/v1/conversations/:id/transfer': apiRoute(transferHandler(chatApi)),
    'get /api/v1/visitors/:visitor/conversations': apiRoute(visitorConversationsHandler(chatApi)),
    'get /api/v1/queue': apiRoute(queueHandler(chatApi)),
    'put /api/v1/agents/:agent/status': apiRoute(agentStatusHandler(chatApi)),
    ...deskRouteHandlers(chatApi, deps.desk, apiRoute),
    'get /api/v1/left-messages': apiRoute(leftMessagesHandler(chatApi)),
    'get /widget.js': asset('widget.js'),
    'get /console': asset('console.html'),
    'get /console.js': asset('console.js'),
    'get /console.css': asset('console.css'),
    'get /demo': plainRoute((t, req) => {
      devOnly();
      web.serve(t, req, 'demo.html');
    }),
    'get /dev/token': apiRoute((t, req) => {
      devOnly();
      return devToken(t, req);
    }),
  };
  for (const r of HTTP_ROUTES) app[r.method](r.path, handlers[routeKey(r)]);
  app.any(
    '/*',
    plainRoute((t) => sendHttpError(t, new SwitchboardError('not_found', 'no such route'))),
  );

  // The port: the configured one, else the one the kernel picked at the first listen (listener-group.ts).
  let port = config.http.port;
  let listenSocket: uWS.us_listen_socket | undefined;
  const listen = (): Promise<boolean> =>
    new Promise((resolve) => {
      app.listen(config.http.host, port, (ls) => {
        if (!ls) return resolve(false);
        listenSocket = ls;
        port = uWS.us_socket_local_port(ls as unknown as uWS.us_socket);
        resolve(true);
      });
    });
  const unlisten = (): void => {
    if (listenSocket) uWS.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
  };
  seat = new ListenerSeat({
    max: maxSockets,
    count: () => sockets.size + upgrading,
    listen,
    unlisten,
    parent: deps.parent ?? processChannel<SeatIpc>(),
    standby: config.gateway.standby,
    admitted: () => admission.stats.admitted,
    ratePerS: config.gateway.upgradeRatePerS,
    log: deps.log,
  });
  if (!(await seat.start())) throw new Error(`cannot listen on ${config.http.host}:${config.http.port}`);
  return {
    port,
    socketCount: () => sessions.socketCount,
    upgradeStats: () => ({ ...admission.stats }),
    sendStats: () => ({ inflight: sendsInflight, refused: sendsRefused }),
    listener: () => ({ listening: seat?.listening ?? false, leaves: seat?.leaves ?? 0 }),
    close() {
      clearInterval(expirySweep);
      clearInterval(cutOffCheck);
      clearInterval(presenceBeat);
      stopping = true;
      seat?.close();
      unlisten();
      flushOutboxes(); // frames of this turn leave before the close frames
      let slot = 0;
      for (const ws of [...sockets]) {
        const data = ws.getUserData();
        // Welcomed sockets only: `welcome` is always a socket's first frame (PROTOCOL.md).
        if (data.welcomed) send(data, drainNotice(slot++));
        // The notice may have found the socket over its send limit and closed it 4008 (sendBounded).
        if (!data.closed) ws.end(CLOSE_CODES.reconnectElsewhere, 'node shutting down');
      }
      app.close();
    },
  };
}
