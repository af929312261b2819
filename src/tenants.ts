/**
 * Per-tenant configuration: one YAML file (`SB_TENANTS_FILE`, example in deploy/tenants.example.yaml)
 * validated with zod, hot-reloaded on change. A file that fails to read, parse or validate is refused
 * as a whole: the previous good configuration stays in force and the reason (with the YAML path and
 * line) is logged. Tenants not listed get the `defaults` entry, so an unknown tenant is never an error.
 *
 * Adding a per-tenant setting (other areas do this): add its schema to TENANT_SECTIONS, its built-in
 * default to BUILTIN_TENANT_DEFAULTS, and read it with `registry.tenant(id).<section>`. Object sections
 * merge field by field over `defaults`; lists and scalars replace the default.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { DEFAULT_TENANTS_RELOAD_DEBOUNCE_MS } from './config.js';
import { BUILTIN_DESK_SETTINGS, type DeskSettings, deskSchema } from './desk/settings.js';
import { RECEPTION_SECTION, type ReceptionSection } from './reception/settings.js';

export { DEFAULT_TENANTS_RELOAD_DEBOUNCE_MS };
/** The id of the settings every tenant the file does not list gets. */
export const DEFAULTS_ID = '*';
export const MAX_TENANTS = 10_000;
export const MAX_API_KEYS_PER_TENANT = 64;
export const MAX_ORIGINS_PER_TENANT = 256;
export const MAX_JWT_KEYS = 64;
/** The file is read whole: refuse anything that cannot be a sane tenants file. */
export const MAX_TENANTS_FILE_BYTES = 4 * 1024 * 1024;

// Built-in rate limits (per tenant unless overridden; see docs/ARCHITECTURE.md "Limits").
export const DEFAULT_CONNECTION_FRAMES_PER_S = 50;
export const DEFAULT_CONNECTION_BURST = 100;
export const DEFAULT_TENANT_FRAMES_PER_S = 5_000;
export const DEFAULT_TENANT_FRAMES_BURST = 10_000;
export const DEFAULT_HTTP_REQUESTS_PER_S = 2_000;
export const DEFAULT_HTTP_BURST = 4_000;

const TENANT_ID = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -');
const KEY_ID = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . : -');
const positive = z.number().positive('must be a positive number').max(1e9);
const positiveInt = z.number().int('must be an integer').positive('must be a positive integer').max(1e9);

/** An origin as browsers send it: scheme://host[:port], no path; or `*` for any. */
const ORIGIN = z
  .string()
  .regex(/^(\*|https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?)$/, 'must be `*` or scheme://host[:port] without a path');

/** `audit`: reads the audit trails (the original bodies of recalled and edited messages). */
export const API_KEY_SCOPES = ['api', 'admin', 'audit'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

const apiKeySchema = z.strictObject({
  id: KEY_ID,
  /** sha256 of the key, lower-case hex. The key itself is never stored. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits (sha256 of the key)'),
  scopes: z.array(z.enum(API_KEY_SCOPES)).min(1).max(API_KEY_SCOPES.length).default(['api']),
});

const rateLimitsSchema = z.strictObject({
  /** Frames per second one WebSocket connection may send (token bucket refill rate). */
  connectionFramesPerS: positive.optional(),
  connectionBurst: positiveInt.optional(),
  /** Frames per second all of the tenant's connections on one node may send together. */
  tenantFramesPerS: positive.optional(),
  tenantBurst: positiveInt.optional(),
  /** HTTP API requests per second for the tenant on one node. */
  httpRequestsPerS: positive.optional(),
  httpBurst: positiveInt.optional(),
});

/** Event types and context kinds: dot-free names; type patterns may use `*` and `>` as NATS subjects. */
const KIND_NAME = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -');
const TYPE_PATTERN = z
  .string()
  .max(128)
  .regex(/^(([A-Za-z0-9_-]+|\*)(\.([A-Za-z0-9_-]+|\*))*(\.>)?|>)$/, 'must be an event type pattern');

/** Business-system integration (docs/INTEGRATION.md): rules file, webhooks, context kinds, agent actions. */
const integrationSchema = z.strictObject({
  /** Routing rules YAML (relative paths are relative to the tenants file); hot-reloaded on its own. */
  rulesFile: z.string().min(1).max(1024).optional(),
  webhooks: z
    .array(
      z.strictObject({
        id: KEY_ID,
        url: z
          .string()
          .max(2048)
          .regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL'),
        /** HMAC-SHA256 key of the X-Switchboard-Signature header. */
        secret: z.string().min(16, 'webhook secrets must be at least 16 characters').max(256),
        /** Conversation event types to send (`message`, `closed`, `*`...); absent = all. */
        events: z.array(TYPE_PATTERN).max(32).optional(),
      }),
    )
    .max(16)
    .optional(),
  /**
   * Conversation event types the tenant's own consumers read from sb_out (`message`, `*`...). With
   * webhooks, what decides whether `message` events are published at all (docs/INTEGRATION.md).
   */
  outEvents: z.array(TYPE_PATTERN).max(32).optional(),
  context: z
    .strictObject({
      /** Asked on sb.biz.<tenant>.ctx.<kind> when an agent opens a conversation. */
      kinds: z.array(KIND_NAME).max(16).optional(),
      timeoutMs: z.number().int().min(10).max(30_000).optional(),
      ttlMs: z.number().int().min(0).max(86_400_000).optional(),
    })
    .optional(),
  actions: z
    .array(
      z.strictObject({
        name: KIND_NAME,
        /** Subject suffix after sb.biz.<tenant>. (default action.<name>). */
        subject: z
          .string()
          .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be dot-separated tokens without wildcards')
          .max(128)
          .optional(),
        /** Roles allowed to run it: `agent` (any agent) or roles from the token's `roles` claim. */
        roles: z.array(KIND_NAME).min(1).max(16).optional(),
        timeoutMs: z.number().int().min(10).max(30_000).optional(),
      }),
    )
    .max(64)
    .optional(),
});

export type IntegrationSection = z.infer<typeof integrationSchema>;

/** Per-tenant sections. Other areas add theirs here (content policy, retention, rules, webhooks…). */
export const TENANT_SECTIONS = {
  /** Browser Origins allowed to open a WebSocket (`*` = any). Requests without Origin are not browsers. */
  origins: z.array(ORIGIN).max(MAX_ORIGINS_PER_TENANT),
  /** Keys for the HTTP API (`Authorization: Bearer <key>` or `X-Api-Key`). */
  apiKeys: z.array(apiKeySchema).max(MAX_API_KEYS_PER_TENANT),
  rateLimits: rateLimitsSchema,
  integration: integrationSchema,
  /**
   * Sensitive words and what to do on a hit (src/content/policies.ts): `mask` replaces the word with
   * `*`, `block` refuses the message (error `blocked`, audited), `review` delivers it flagged to the
   * agent. Words inline and/or one per line in `wordsFile` (relative to this file; reloaded on change).
   * Without a policy the built-in word list is masked.
   */
  contentPolicy: z.strictObject({
    rules: z
      .array(
        z
          .strictObject({
            action: z.enum(['mask', 'block', 'review']),
            words: z.array(z.string().min(1).max(64)).max(50_000).optional(),
            wordsFile: z.string().min(1).optional(),
          })
          .refine((r) => r.words !== undefined || r.wordsFile !== undefined, {
            message: 'give words, wordsFile or both',
          }),
      )
      .max(32),
  }),
  /** How long messages are kept: `days` (1-7300) is each message row's TTL; 0 keeps them for ever. */
  retention: z.strictObject({ days: z.number().int().min(0).max(7300) }),
  /** Canned replies, labels, recall and edit bounds (src/desk/settings.ts). */
  desk: deskSchema,
  /** No-reply reassignment, business hours, bot first (src/reception/settings.ts, issue #17). */
  reception: RECEPTION_SECTION,
};

const tenantSchema = z.strictObject({
  origins: TENANT_SECTIONS.origins.optional(),
  apiKeys: TENANT_SECTIONS.apiKeys.optional(),
  rateLimits: TENANT_SECTIONS.rateLimits.optional(),
  integration: TENANT_SECTIONS.integration.optional(),
  contentPolicy: TENANT_SECTIONS.contentPolicy.optional(),
  retention: TENANT_SECTIONS.retention.optional(),
  desk: TENANT_SECTIONS.desk.optional(),
  reception: TENANT_SECTIONS.reception.optional(),
});

const hsKeySchema = z
  .strictObject({
    kid: KEY_ID,
    alg: z.literal('HS256'),
    /** The shared secret inline (keep the file private) … */
    secret: z.string().min(32, 'HS256 secrets must be at least 32 characters').optional(),
    /** … or in a file of its own (relative paths are relative to the tenants file). */
    secretFile: z.string().min(1).optional(),
  })
  .refine((k) => (k.secret === undefined) !== (k.secretFile === undefined), {
    message: 'give exactly one of secret and secretFile',
  });
const rsKeySchema = z.strictObject({
  kid: KEY_ID,
  alg: z.literal('RS256'),
  /** SPKI PEM (`-----BEGIN PUBLIC KEY-----`). */
  publicKeyFile: z.string().min(1),
});

const fileSchema = z.strictObject({
  version: z.literal(1),
  auth: z
    .strictObject({
      /** Token verification keys, chosen by the token's `kid`. */
      keys: z
        .array(z.union([hsKeySchema, rsKeySchema]))
        .max(MAX_JWT_KEYS)
        .optional(),
      /** JWKS documents (RFC 7517) with public keys (RS256), chosen by `kid`. */
      jwksFiles: z.array(z.string().min(1)).max(16).optional(),
    })
    .optional(),
  /** Keys for /admin/* and /metrics (besides SB_ADMIN_TOKEN); not tied to a tenant. */
  operatorKeys: z.array(apiKeySchema).max(MAX_API_KEYS_PER_TENANT).optional(),
  defaults: tenantSchema.optional(),
  tenants: z.record(TENANT_ID, tenantSchema).optional(),
});

export type RateLimits = Required<z.infer<typeof rateLimitsSchema>>;
export type ApiKeyEntry = z.infer<typeof apiKeySchema>;

/** The effective settings of one tenant (its entry merged over `defaults` over the built-ins). */
export interface TenantSettings {
  /** The tenant's id; `*` for the defaults (a tenant the file does not list). */
  readonly id: string;
  /** Whether the file lists this tenant (otherwise these are the defaults). */
  readonly listed: boolean;
  readonly origins: readonly string[];
  readonly apiKeys: readonly ApiKeyEntry[];
  readonly rateLimits: Readonly<RateLimits>;
  readonly integration: Readonly<IntegrationSection>;
  /** undefined: the built-in word list is masked. */
  readonly contentPolicy?: Readonly<ContentPolicySpec>;
  readonly retention: Readonly<{ days: number }>;
  readonly desk: Readonly<DeskSettings>;
  /** undefined: no reassignment, always open, no bot (src/reception/settings.ts). */
  readonly reception?: Readonly<ReceptionSection>;
}

export type ContentPolicySpec = z.infer<typeof TENANT_SECTIONS.contentPolicy>;

export const BUILTIN_TENANT_DEFAULTS: Omit<TenantSettings, 'id' | 'listed'> = Object.freeze({
  // No file, no restriction: a development setup serves any browser page. The example file narrows it.
  origins: Object.freeze(['*']),
  apiKeys: Object.freeze([]),
  rateLimits: Object.freeze({
    connectionFramesPerS: DEFAULT_CONNECTION_FRAMES_PER_S,
    connectionBurst: DEFAULT_CONNECTION_BURST,
    tenantFramesPerS: DEFAULT_TENANT_FRAMES_PER_S,
    tenantBurst: DEFAULT_TENANT_FRAMES_BURST,
    httpRequestsPerS: DEFAULT_HTTP_REQUESTS_PER_S,
    httpBurst: DEFAULT_HTTP_BURST,
  }),
  // No rules, webhooks, context kinds or actions unless the file configures them.
  integration: Object.freeze({}),
  retention: Object.freeze({ days: 0 }),
  desk: BUILTIN_DESK_SETTINGS,
});

export type JwtKeySpec =
  | { readonly kid: string; readonly alg: 'HS256'; readonly secret: string }
  | { readonly kid: string; readonly alg: 'RS256'; readonly publicKeyPem: string };

/** An API key found by its hash: which tenant (or the operator set) and which entry. */
export interface ApiKeyMatch {
  /** The tenant the key belongs to; undefined for operator keys. */
  readonly tenant: string | undefined;
  readonly key: ApiKeyEntry;
}

/** One immutable, validated configuration. */
export interface TenantsSnapshot {
  /** The file it came from (undefined: built-in defaults only). */
  readonly file: string | undefined;
  /** 0 for the first load, +1 for each accepted reload. */
  readonly generation: number;
  readonly jwtKeys: readonly JwtKeySpec[];
  /** Raw text of each JWKS file (parsed and checked by the authenticator). */
  readonly jwks: readonly { file: string; json: unknown }[];
  tenant(id: string): TenantSettings;
  /** The tenants the file lists. */
  tenantIds(): readonly string[];
  /** The key whose sha256 is that of `presented`, compared in constant time; undefined when none. */
  findApiKey(presented: string): ApiKeyMatch | undefined;
}

/** sha256 hex of an API key, as stored in the tenants file (`switchboard api-key` prints one). */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export class TenantsConfigError extends Error {
  override readonly name = 'TenantsConfigError';
}

type FileShape = z.infer<typeof fileSchema>;
type TenantShape = z.infer<typeof tenantSchema>;

function mergeSection(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (base && over && typeof base === 'object' && typeof over === 'object' && !Array.isArray(over)) {
    return Object.freeze({ ...(base as object), ...(over as object) });
  }
  return Object.freeze(over);
}

function mergeTenant(base: Omit<TenantSettings, 'id' | 'listed'>, over: TenantShape | undefined) {
  const out: Record<string, unknown> = { ...base };
  if (over) for (const [k, v] of Object.entries(over)) out[k] = mergeSection(out[k], v);
  return out as unknown as Omit<TenantSettings, 'id' | 'listed'>;
}

function buildSnapshot(
  file: string | undefined,
  generation: number,
  parsed: FileShape,
  jwtKeys: JwtKeySpec[],
  jwks: { file: string; json: unknown }[],
): TenantsSnapshot {
  const defaults = mergeTenant(BUILTIN_TENANT_DEFAULTS, parsed.defaults);
  // One shared object for every unlisted tenant: tenant() is on the per-frame path.
  const unlisted: TenantSettings = Object.freeze({ ...defaults, id: DEFAULTS_ID, listed: false });
  const tenants = new Map<string, TenantSettings>();
  for (const [id, entry] of Object.entries(parsed.tenants ?? {})) {
    tenants.set(id, Object.freeze({ ...mergeTenant(defaults, entry), id, listed: true }));
  }
  const byHash = new Map<string, ApiKeyMatch>();
  const addKey = (tenant: string | undefined, key: ApiKeyEntry) => {
    const prior = byHash.get(key.sha256);
    if (prior) {
      throw new TenantsConfigError(
        `API key ${tenant ?? 'operator'}/${key.id} has the same hash as ${prior.tenant ?? 'operator'}/${prior.key.id}`,
      );
    }
    byHash.set(key.sha256, Object.freeze({ tenant, key }));
  };
  for (const k of parsed.operatorKeys ?? []) addKey(undefined, k);
  for (const [id, t] of tenants) for (const k of t.apiKeys) addKey(id, k);
  if (defaults.apiKeys.length > 0) {
    throw new TenantsConfigError('defaults.apiKeys: API keys belong to a listed tenant, not to the defaults');
  }
  const kids = new Set<string>();
  for (const k of jwtKeys) {
    if (kids.has(k.kid)) throw new TenantsConfigError(`auth.keys: kid '${k.kid}' appears twice`);
    kids.add(k.kid);
  }
  return Object.freeze({
    file,
    generation,
    jwtKeys: Object.freeze(jwtKeys),
    jwks: Object.freeze(jwks),
    tenant(id: string): TenantSettings {
      return tenants.get(id) ?? unlisted;
    },
    tenantIds(): readonly string[] {
      return [...tenants.keys()];
    },
    findApiKey(presented: string): ApiKeyMatch | undefined {
      const digest = createHash('sha256').update(presented, 'utf8').digest();
      // The map lookup is by hash (which reveals nothing usable about the key); the final equality is
      // still checked in constant time, as a defence in depth.
      const match = byHash.get(digest.toString('hex'));
      if (!match) return undefined;
      return timingSafeEqual(digest, Buffer.from(match.key.sha256, 'hex')) ? match : undefined;
    },
  });
}

/** The snapshot used when no file is configured: built-in defaults for every tenant. */
export function defaultTenantsSnapshot(): TenantsSnapshot {
  return buildSnapshot(undefined, 0, { version: 1 }, [], []);
}

/** Formats a zod issue as `path (line N): message` using the YAML document's positions. */
function describeIssue(
  doc: ReturnType<typeof parseDocument>,
  lines: LineCounter,
  issue: { path: PropertyKey[]; message: string },
): string {
  const path = issue.path.map(String);
  let line: number | undefined;
  for (let n = path.length; n >= 0 && line === undefined; n--) {
    const node = doc.getIn(
      path.slice(0, n).map((p) => (/^\d+$/.test(p) ? Number(p) : p)),
      true,
    ) as { range?: [number, number, number] } | undefined;
    if (node?.range) line = lines.linePos(node.range[0]).line;
  }
  const where = path.length > 0 ? path.join('.') : '(top level)';
  return `${where}${line === undefined ? '' : ` (line ${line})`}: ${issue.message}`;
}

/** Parses and validates a tenants file's text; throws TenantsConfigError naming path and line. */
export function parseTenantsYaml(text: string, fileName = 'tenants file'): FileShape {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new TenantsConfigError(
      `${fileName}: ${pos ? `line ${pos.line}: ` : ''}${e.message.split('\n')[0] ?? e.message}`,
    );
  }
  const result = fileSchema.safeParse(doc.toJS({ maxAliasCount: 100 }));
  if (!result.success) {
    const described = result.error.issues.slice(0, 5).map((i) => describeIssue(doc, lines, i));
    throw new TenantsConfigError(`${fileName}: ${described.join('; ')}`);
  }
  if (Object.keys(result.data.tenants ?? {}).length > MAX_TENANTS) {
    throw new TenantsConfigError(`${fileName}: tenants: at most ${MAX_TENANTS} tenants`);
  }
  return result.data;
}

async function readSmall(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new TenantsConfigError(`${what}: cannot read ${path}: ${(err as Error).message}`);
  }
  if (text.length > MAX_TENANTS_FILE_BYTES) throw new TenantsConfigError(`${what}: ${path} is too large`);
  return text;
}

/** Reads the file and the key files it names; resolves a snapshot or rejects TenantsConfigError. */
export async function loadTenantsFile(file: string, generation = 0): Promise<TenantsSnapshot> {
  const text = await readSmall(file, 'tenants file');
  const parsed = parseTenantsYaml(text, basename(file));
  const rel = (p: string) => (isAbsolute(p) ? p : resolve(dirname(file), p));
  const jwtKeys: JwtKeySpec[] = [];
  for (const [i, k] of (parsed.auth?.keys ?? []).entries()) {
    const where = `auth.keys.${i} (kid ${k.kid})`;
    if (k.alg === 'HS256') {
      const secret = k.secret ?? (await readSmall(rel(k.secretFile!), where)).trim();
      if (secret.length < 32)
        throw new TenantsConfigError(`${where}: the secret must be at least 32 characters`);
      jwtKeys.push({ kid: k.kid, alg: 'HS256', secret });
    } else {
      const pem = await readSmall(rel(k.publicKeyFile), where);
      if (!pem.includes('-----BEGIN PUBLIC KEY-----')) {
        throw new TenantsConfigError(`${where}: ${k.publicKeyFile} is not an SPKI PEM public key`);
      }
      jwtKeys.push({ kid: k.kid, alg: 'RS256', publicKeyPem: pem });
    }
  }
  const jwks: { file: string; json: unknown }[] = [];
  for (const f of parsed.auth?.jwksFiles ?? []) {
    const text2 = await readSmall(rel(f), `auth.jwksFiles (${f})`);
    try {
      jwks.push({ file: f, json: JSON.parse(text2) });
    } catch (err) {
      throw new TenantsConfigError(`auth.jwksFiles (${f}): not JSON: ${(err as Error).message}`);
    }
  }
  return buildSnapshot(file, generation, parsed, jwtKeys, jwks);
}

/**
 * Runs before a new snapshot takes effect; throws to refuse it (the previous one stays). Resolves a
 * commit function called when every preparer accepted the snapshot (so derived state swaps together).
 */
export type SnapshotPreparer = (next: TenantsSnapshot) => Promise<(() => void) | undefined>;

export interface TenantRegistryOptions {
  /** The YAML file; undefined = built-in defaults, no watching. */
  file: string | undefined;
  debounceMs?: number;
  log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/**
 * The live tenant configuration of this process. `current` is always a complete, validated snapshot;
 * reloads replace it atomically.
 */
export class TenantRegistry {
  private snapshot: TenantsSnapshot;
  private readonly preparers: SnapshotPreparer[] = [];
  private readonly listeners = new Set<(s: TenantsSnapshot) => void>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly opts: TenantRegistryOptions,
    first: TenantsSnapshot,
  ) {
    this.snapshot = first;
  }

  /** Loads the file (rejecting TenantsConfigError when it is bad) and starts watching it. */
  static async open(opts: TenantRegistryOptions): Promise<TenantRegistry> {
    const first = opts.file ? await loadTenantsFile(opts.file) : defaultTenantsSnapshot();
    const reg = new TenantRegistry(opts, first);
    if (opts.file) reg.watch(opts.file);
    return reg;
  }

  get current(): TenantsSnapshot {
    return this.snapshot;
  }

  tenant(id: string): TenantSettings {
    return this.snapshot.tenant(id);
  }

  /** Registers a preparer and runs it on the current snapshot at once (rejects if it refuses it). */
  async use(prepare: SnapshotPreparer): Promise<void> {
    const commit = await prepare(this.snapshot);
    commit?.();
    this.preparers.push(prepare);
  }

  /** Called after each accepted reload; returns an unsubscribe function. */
  onChange(listener: (s: TenantsSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Reads the file again. Resolves true when the new snapshot took effect, false when it was
   * refused (logged; the previous one stays). Reloads run one at a time, each reading the file anew.
   */
  reload(): Promise<boolean> {
    const run = this.chain.then(() => this.doReload());
    this.chain = run;
    return run;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.watcher?.close();
    this.listeners.clear();
  }

  private async doReload(): Promise<boolean> {
    const file = this.opts.file;
    if (!file || this.closed) return false;
    try {
      const next = await loadTenantsFile(file, this.snapshot.generation + 1);
      const commits: (() => void)[] = [];
      for (const p of this.preparers) {
        const c = await p(next);
        if (c) commits.push(c);
      }
      if (this.closed) return false;
      for (const c of commits) c();
      this.snapshot = next;
      this.opts.log.info({ file, generation: next.generation }, 'tenants file reloaded');
      for (const l of this.listeners) l(next);
      return true;
    } catch (err) {
      this.opts.log.error(
        { file, err: (err as Error).message },
        'tenants file refused; the previous configuration stays in force',
      );
      return false;
    }
  }

  private watch(file: string): void {
    // Watch the directory, not the file: editors and config managers replace files by rename, which
    // ends a watch on the old inode.
    const dir = dirname(file);
    const name = basename(file);
    try {
      readFileSync(file); // fail early (open() already read it) if it vanished meanwhile
      this.watcher = watch(dir, { persistent: false }, (_event, changed) => {
        if (changed !== null && changed !== name) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(
          () => void this.reload(),
          this.opts.debounceMs ?? DEFAULT_TENANTS_RELOAD_DEBOUNCE_MS,
        );
        this.timer.unref();
      });
      this.watcher.on('error', (err) => this.opts.log.error({ err }, 'tenants file watch failed'));
    } catch (err) {
      this.opts.log.error({ err, file }, 'cannot watch the tenants file; reloads need a restart');
    }
  }
}
