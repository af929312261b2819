/**
 * The fault checker's judgement, a pure function of what the clients were told and what Cassandra holds:
 * every cmid a client sent is classified, and every broken promise is a violation with an example.
 *
 * Classes (each cmid is in exactly one, in this order of precedence):
 * - lost: acked, but the row stored at the acked seq is another message (or none, or another id);
 * - duplicated: stored at two or more seqs;
 * - ok: acked and stored exactly once, at the acked seq, with the acked id;
 * - unknown: never acked (split into stored once / not stored: both are allowed outcomes).
 *
 * Violations: lost, duplicated, ack-conflict (one cmid acked with two different (seq, id)), gap (a seq
 * missing between 1 and the conversation's highest), seq-conflict (two rows claim one seq), push-differs
 * (a `msg` pushed to a recipient is not the row stored at its seq), cmid-index (a `cmids` row names a seq
 * whose row is another message), body-differs (a stored row's body is not what its sender sent), foreign
 * (a stored row of one of the clients with a cmid it never sent).
 */

/** Conversations are keyed `<tenant>/<conv>` throughout. */
export type ConvKey = string;

export interface SentMessage {
  conv: ConvKey;
  cmid: string;
  sender: string;
  body: string;
}

export interface AckSeen {
  conv: ConvKey;
  cmid: string;
  seq: number;
  id: string;
  /** ms since the run started. */
  at: number;
}

export interface PushSeen {
  conv: ConvKey;
  seq: number;
  id: string;
  cmid: string;
  body: string;
  /** The recipient (user id). */
  to: string;
  at: number;
}

export interface StoredRow {
  conv: ConvKey;
  seq: number;
  id: string;
  cmid: string;
  sender: string;
  body: string;
  /** writetime() of the row, µs (Cassandra's last-write-wins timestamp), when read. */
  writeTimeUs?: number;
}

export interface CmidIndexRow {
  conv: ConvKey;
  sender: string;
  cmid: string;
  seq: number;
  id: string;
}

export type CmidClass = 'ok' | 'lost' | 'duplicated' | 'unknown';

export const VIOLATION_KINDS = [
  'lost',
  'duplicated',
  'ack-conflict',
  'gap',
  'seq-conflict',
  'push-differs',
  'cmid-index',
  'body-differs',
  'foreign',
] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

export interface Violation {
  kind: ViolationKind;
  conv: ConvKey;
  seq?: number;
  cmid?: string;
  /** What was promised or told, and what is stored, in words. */
  detail: string;
  /** When the client was told (ms since start), for lost, ack-conflict and push-differs. */
  at?: number;
}

export interface Classification {
  counts: Record<CmidClass, number>;
  /** Of the unknown: stored exactly once (a retry's outcome never reached a client) / not stored. */
  unknownStored: number;
  unknownNotStored: number;
  conversations: number;
  storedRows: number;
  /** Stored rows of senders that are none of the clients (system or bot messages): not scored. */
  otherRows: number;
  acks: number;
  pushes: number;
  violationCounts: Record<ViolationKind, number>;
  /** Up to `maxExamples` per kind, in conversation and seq order. */
  violations: Violation[];
  /** When a client was told each violating thing (all of them, not only the examples), per kind. */
  violationTimes: Partial<Record<ViolationKind, number[]>>;
}

function rowText(r: StoredRow | undefined): string {
  return r === undefined ? 'no row' : `${r.cmid} (id ${r.id})`;
}

/**
 * Classifies every sent cmid and lists the violations. `maxExamples` bounds the examples kept per kind
 * (the counts are always complete). Pure: the same inputs give the same output.
 */
export function classify(
  input: {
    sent: readonly SentMessage[];
    acks: readonly AckSeen[];
    pushes: readonly PushSeen[];
    stored: readonly StoredRow[];
    cmidIndex: readonly CmidIndexRow[];
  },
  maxExamples = 50,
): Classification {
  const violations: Violation[] = [];
  const violationCounts = Object.fromEntries(VIOLATION_KINDS.map((k) => [k, 0])) as Record<
    ViolationKind,
    number
  >;
  const violationTimes: Partial<Record<ViolationKind, number[]>> = {};
  const flag = (v: Violation): void => {
    violationCounts[v.kind]++;
    if (v.at !== undefined) {
      const times = violationTimes[v.kind] ?? [];
      times.push(v.at);
      violationTimes[v.kind] = times;
    }
    if (violationCounts[v.kind] <= maxExamples) violations.push(v);
  };
  const key = (conv: ConvKey, cmid: string): string => `${conv}\u0000${cmid}`;
  const seqKey = (conv: ConvKey, seq: number): string => `${conv}\u0000${seq}`;

  // Stored rows by (conv, seq) and by (conv, cmid).
  const bySeq = new Map<string, StoredRow>();
  const seqsOfCmid = new Map<string, number[]>();
  const seqsOfConv = new Map<ConvKey, number[]>();
  for (const r of input.stored) {
    const sk = seqKey(r.conv, r.seq);
    const prior = bySeq.get(sk);
    if (prior !== undefined) {
      flag({
        kind: 'seq-conflict',
        conv: r.conv,
        seq: r.seq,
        detail: `two stored rows at seq ${r.seq}: ${rowText(prior)} and ${rowText(r)}`,
      });
      continue;
    }
    bySeq.set(sk, r);
    const ck = key(r.conv, r.cmid);
    const list = seqsOfCmid.get(ck);
    if (list) list.push(r.seq);
    else seqsOfCmid.set(ck, [r.seq]);
    const seqs = seqsOfConv.get(r.conv);
    if (seqs) seqs.push(r.seq);
    else seqsOfConv.set(r.conv, [r.seq]);
  }

  // Gaps: every conversation's seqs are 1..max.
  for (const [conv, seqs] of [...seqsOfConv].sort(([a], [b]) => a.localeCompare(b))) {
    seqs.sort((a, b) => a - b);
    const max = seqs[seqs.length - 1] ?? 0;
    const have = new Set(seqs);
    for (let s = 1; s <= max; s++) {
      if (!have.has(s)) flag({ kind: 'gap', conv, seq: s, detail: `seq ${s} missing (highest ${max})` });
    }
  }

  // Acks: the first answer per cmid is the promise; a later different one is a conflict.
  const ackOf = new Map<string, AckSeen>();
  for (const a of input.acks) {
    const k = key(a.conv, a.cmid);
    const first = ackOf.get(k);
    if (first === undefined) ackOf.set(k, a);
    else if (first.seq !== a.seq || first.id !== a.id) {
      flag({
        kind: 'ack-conflict',
        conv: a.conv,
        cmid: a.cmid,
        seq: a.seq,
        at: a.at,
        detail: `acked at seq ${first.seq} (id ${first.id}), later at seq ${a.seq} (id ${a.id})`,
      });
    }
  }

  const sentBy = new Map<string, SentMessage>();
  for (const s of input.sent) sentBy.set(key(s.conv, s.cmid), s);

  const counts: Record<CmidClass, number> = { ok: 0, lost: 0, duplicated: 0, unknown: 0 };
  let unknownStored = 0;
  let unknownNotStored = 0;
  for (const s of input.sent) {
    const k = key(s.conv, s.cmid);
    const ack = ackOf.get(k);
    const seqs = seqsOfCmid.get(k) ?? [];
    if (ack !== undefined) {
      const row = bySeq.get(seqKey(s.conv, ack.seq));
      if (row === undefined || row.cmid !== s.cmid || row.id !== ack.id) {
        counts.lost++;
        const elsewhere = seqs.filter((q) => q !== ack.seq);
        flag({
          kind: 'lost',
          conv: s.conv,
          cmid: s.cmid,
          seq: ack.seq,
          at: ack.at,
          detail:
            `acked at seq ${ack.seq} (id ${ack.id}); stored there: ${rowText(row)}` +
            (elsewhere.length > 0 ? `; this cmid is stored at seq ${elsewhere.join(', ')}` : ''),
        });
        continue;
      }
    }
    if (seqs.length > 1) {
      counts.duplicated++;
      flag({
        kind: 'duplicated',
        conv: s.conv,
        cmid: s.cmid,
        seq: seqs[0]!,
        detail: `stored at seqs ${[...seqs].sort((a, b) => a - b).join(', ')}${ack ? ` (acked at ${ack.seq})` : ' (never acked)'}`,
      });
      continue;
    }
    if (ack !== undefined) counts.ok++;
    else {
      counts.unknown++;
      if (seqs.length === 1) unknownStored++;
      else unknownNotStored++;
    }
  }

  // Stored rows: each one's body is what its sender sent; each cmid of our senders was sent by them.
  // Rows of other senders (system or bot messages the broker may add) only take their seq.
  const senders = new Set(input.sent.map((s) => s.sender));
  let otherRows = 0;
  for (const r of [...bySeq.values()].sort((a, b) => a.conv.localeCompare(b.conv) || a.seq - b.seq)) {
    const s = sentBy.get(key(r.conv, r.cmid));
    if (s === undefined && !senders.has(r.sender)) {
      otherRows++;
      continue;
    }
    if (s === undefined) {
      flag({
        kind: 'foreign',
        conv: r.conv,
        seq: r.seq,
        cmid: r.cmid,
        detail: `no client sent ${rowText(r)}`,
      });
    } else if (s.body !== r.body || s.sender !== r.sender) {
      flag({
        kind: 'body-differs',
        conv: r.conv,
        seq: r.seq,
        cmid: r.cmid,
        detail: `stored ${JSON.stringify(r.body)} from ${r.sender}, sent ${JSON.stringify(s.body)} from ${s.sender}`,
      });
    }
  }

  // Pushes: every `msg` a recipient got is the stored row at its seq.
  for (const p of input.pushes) {
    const row = bySeq.get(seqKey(p.conv, p.seq));
    if (row === undefined || row.id !== p.id || row.cmid !== p.cmid || row.body !== p.body) {
      flag({
        kind: 'push-differs',
        conv: p.conv,
        seq: p.seq,
        cmid: p.cmid,
        at: p.at,
        detail: `${p.to} was pushed ${p.cmid} (id ${p.id}) at seq ${p.seq}; stored there: ${rowText(row)}`,
      });
    }
  }

  // The cmids index names the row that is stored at its seq.
  for (const c of input.cmidIndex) {
    const row = bySeq.get(seqKey(c.conv, c.seq));
    if (row === undefined || row.cmid !== c.cmid || row.id !== c.id) {
      flag({
        kind: 'cmid-index',
        conv: c.conv,
        seq: c.seq,
        cmid: c.cmid,
        detail: `cmids row of ${c.cmid} points at seq ${c.seq} (id ${c.id}); stored there: ${rowText(row)}`,
      });
    }
  }

  return {
    counts,
    unknownStored,
    unknownNotStored,
    conversations: new Set([...input.sent.map((s) => s.conv), ...seqsOfConv.keys()]).size,
    storedRows: input.stored.length,
    otherRows,
    acks: ackOf.size,
    pushes: input.pushes.length,
    violationCounts,
    violations,
    violationTimes,
  };
}

/** Per-second counts of `times` (ms since start) over [0, endMs): the acks-per-second timeline. */
export function perSecond(times: readonly number[], endMs: number): number[] {
  const out = new Array<number>(Math.max(1, Math.ceil(endMs / 1000))).fill(0);
  for (const t of times) {
    const i = Math.floor(t / 1000);
    if (i >= 0 && i < out.length) out[i]!++;
  }
  return out;
}

export interface FaultRecovery {
  /** Mean acks/s over the `baselineS` seconds before the fault. */
  baselinePerS: number;
  /** Longest time without any ack between the fault's start and `untilMs`, ms. */
  longestStallMs: number;
  /** Time from the fault's start to the first ack after its longest stall ended, ms (0: no stall). */
  stallEndsAfterMs: number;
  /**
   * From the fault's end (heal, restart, SIGCONT) to the first second whose ack count is at least half
   * the baseline again, ms; undefined when it never recovered before `untilMs`.
   */
  resumeAfterEndMs: number | undefined;
}

/**
 * How acking went around one fault, from the sorted ack times (ms since start). Pure, for the report.
 */
export function recovery(
  sortedAckTimes: readonly number[],
  fault: { startMs: number; endMs: number; untilMs: number },
  baselineS = 10,
): FaultRecovery {
  const before = sortedAckTimes.filter((t) => t >= fault.startMs - baselineS * 1000 && t < fault.startMs);
  const baselinePerS = before.length / baselineS;
  let prev = fault.startMs;
  let longest = 0;
  let stallEnd = fault.startMs;
  for (const t of sortedAckTimes) {
    if (t < fault.startMs) continue;
    if (t > fault.untilMs) break;
    if (t - prev > longest) {
      longest = t - prev;
      stallEnd = t;
    }
    prev = t;
  }
  if (fault.untilMs - prev > longest) {
    longest = fault.untilMs - prev;
    stallEnd = fault.untilMs;
  }
  let resumeAfterEndMs: number | undefined;
  const threshold = Math.max(1, baselinePerS / 2);
  for (let s = fault.endMs; s + 1000 <= fault.untilMs + 1; s += 250) {
    const n = sortedAckTimes.filter((t) => t >= s && t < s + 1000).length;
    if (n >= threshold) {
      resumeAfterEndMs = s - fault.endMs;
      break;
    }
  }
  return {
    baselinePerS,
    longestStallMs: Math.round(longest),
    stallEndsAfterMs: Math.round(stallEnd - fault.startMs),
    resumeAfterEndMs,
  };
}
