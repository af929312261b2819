/** The fault checker's Markdown report and its acks-per-second chart. */
import { lineChart } from '../report/svg-chart.js';
import { type Chart, mdImage, mdTable, type ReportPaths } from '../report/write.js';
import type { FaultsReport } from './scenario.js';

const EXAMPLES_PER_KIND = 5;

function s(ms: number | undefined): string {
  return ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`;
}

function codes(m: Record<string, number>): string {
  const e = Object.entries(m).sort(([, a], [, b]) => b - a);
  return e.length === 0 ? '–' : e.map(([k, n]) => `${k} ${n}`).join(', ');
}

/** `|` would end a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

export function faultsSummary(r: FaultsReport): string {
  const c = r.classification.counts;
  return (
    `faults: ${r.verdict.pass ? 'PASS' : 'FAIL'} — ${r.load.sent} cmids: ok ${c.ok}, lost ${c.lost}, ` +
    `duplicated ${c.duplicated}, unknown ${c.unknown}` +
    (r.verdict.pass ? '' : `; violations: ${r.verdict.reasons.join(', ')}`)
  );
}

export function faultsCharts(r: FaultsReport): Chart[] {
  return [
    {
      name: 'acks',
      svg: lineChart({
        title: 'Acks per second (faults listed in the report)',
        xLabel: 's since the load started',
        yLabel: 'acks/s',
        series: [{ name: 'acks/s', points: r.acksPerSecond.map((n, i) => [i, n] as const) }],
      }),
    },
  ];
}

export function faultsMarkdown(r: FaultsReport, paths: ReportPaths): string {
  const c = r.classification;
  const o = r.options;
  const lines: string[] = [
    `# Switchboard fault check — ${r.startedAt}`,
    '',
    `**Verdict: ${r.verdict.pass ? 'PASS' : 'FAIL'}**${r.verdict.pass ? ' — no violation' : ` — ${r.verdict.reasons.join(', ')}`}` +
      (r.aborted ? ` (run ended early: ${r.aborted})` : ''),
    '',
    `Command: \`${r.command}\``,
    '',
    `Real processes on one machine (${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.machine.node}): ` +
      `3 nats-servers (JetStream cluster) at ${r.topology.nats.join(', ')}, Cassandra at ${r.topology.cassandra}, ` +
      `and ${r.topology.brokers.length} broker members (\`switchboard node\`), each in a network namespace of its own: ` +
      `${r.topology.brokers.map((b) => `${b.nodeId} ${b.address} (${b.namespace})`).join(', ')}. ` +
      `Keyspace \`${r.keyspace}\`, lease TTL ${o.leaseTtlMs === undefined ? "the broker's default" : `${o.leaseTtlMs} ms`}, schedule \`${r.schedule.name}\`, seed ${r.schedule.seed}` +
      (o.brokerCli === undefined ? '.' : `; brokers run \`${o.brokerCli}\`.`),
    '',
    `Load: ${o.tenants * o.conversationsPerTenant} conversations (${o.tenants} tenants × ${o.conversationsPerTenant}, ` +
      `${o.agentsPerTenant} online agents per tenant), ${o.ratePerS} new messages/s in total, each visitor ` +
      `pipelining up to ${o.pipeline} sends and retrying every unanswered or refused send with the same cmid ` +
      `(ack timeout ${o.ackTimeoutMs} ms, \`retryAfterMs\` or backoff, across reconnects to any broker).`,
    '',
  ];
  if (r.topology.placement) {
    const p = r.topology.placement;
    lines.push(
      `JetStream at start: meta leader ${p.metaLeader ?? '?'}; ` +
        Object.entries(p.replicas)
          .sort()
          .map(([st, n]) => `${st} R${n} led by ${p.streamLeaders[st] ?? '?'}`)
          .join(', ') +
        '.',
      '',
    );
  }
  lines.push(
    '## Every cmid, scored against Cassandra',
    '',
    mdTable(
      ['class', 'cmids', 'meaning'],
      [
        ['ok', c.counts.ok, 'acked, stored once at the acked seq with the acked id'],
        ['lost', c.counts.lost, 'acked, but the row at the acked seq is another message (or none)'],
        ['duplicated', c.counts.duplicated, 'stored at two or more seqs'],
        [
          'unknown',
          c.counts.unknown,
          `never acked (allowed): ${c.unknownStored} stored once, ${c.unknownNotStored} not stored`,
        ],
      ],
    ),
    '',
    `${r.load.sent} cmids sent, ${c.acks} acked, ${c.storedRows} rows stored in ${c.conversations} conversations, ` +
      `${c.pushes} \`msg\` frames pushed to visitors and agents; ${r.load.unackedAtEnd} still unacked after the settle time. ` +
      `Sockets: ${r.load.sockets.opened} opened, ${r.load.sockets.failedOpens} failed to open, ${r.load.sockets.moved} moved to another broker ` +
      `(${r.load.sockets.silentDropped} of them silent). Error frames: ${codes(r.load.errors)}; ack timeouts: ${r.load.ackTimeouts}. ` +
      `Largest server frame: ${r.load.largestFrameBytes} bytes.` +
      (r.cmidTable === false ? ' The keyspace has no `cmids` table: that check was skipped.' : ''),
    '',
    '## Violations',
    '',
  );
  const kinds = Object.entries(c.violationCounts).filter(([, n]) => n > 0);
  const protocol = Object.entries(r.protocol.counts).filter(([, n]) => n > 0);
  if (kinds.length === 0 && protocol.length === 0) lines.push('None.', '');
  else {
    lines.push(
      mdTable(
        ['kind', 'count'],
        [...kinds, ...protocol].map(([k, n]) => [k, n]),
      ),
      '',
    );
    for (const [kind] of kinds) {
      lines.push(`Examples of \`${kind}\`:`, '');
      for (const v of c.violations.filter((x) => x.kind === kind).slice(0, EXAMPLES_PER_KIND)) {
        lines.push(
          `- ${v.conv}${v.cmid ? ` \`${v.cmid}\`` : ''}${v.seq === undefined ? '' : ` seq ${v.seq}`}` +
            `${v.at === undefined ? '' : ` (told at t=${s(v.at)})`}: ${v.detail}`,
        );
      }
      lines.push('');
    }
    for (const [kind] of protocol) {
      lines.push(`Examples of \`${kind}\`:`, '');
      for (const f of r.protocol.examples.filter((x) => x.kind === kind).slice(0, EXAMPLES_PER_KIND)) {
        lines.push(`- t=${s(f.at)} ${f.user} on ${f.node}: ${f.detail}`);
      }
      lines.push('');
    }
  }
  lines.push(
    '## Schedule',
    '',
    'Times from the start of the load. _Stall_: the longest time without any ack from the fault until the next ' +
      "step. _Resumed_: from the fault's end (restart ready, SIGCONT, heal) to the first second with at least " +
      'half the acks/s of the 10 s before the fault. _Violations told meanwhile_: lost acks, conflicting acks and ' +
      'wrong pushes whose client was told between this fault and the next step. _Shards held twice / by none_: ' +
      "from the brokers' own `/admin/shards` lists, sampled every 500 ms (one after another, so a handover can " +
      'show as a brief overlap; a paused broker does not answer).',
    '',
    mdTable(
      [
        'fault',
        'target',
        'from',
        'until',
        'held',
        'stall',
        'resumed after end',
        'violations told meanwhile',
        'shards held twice / by none (max)',
        'errors',
        'ack timeouts',
        'notes',
      ],
      r.faults.map((f) => [
        f.kind,
        f.target,
        s(f.startMs),
        s(f.endMs),
        s(f.endMs - f.startMs),
        s(f.recovery.longestStallMs),
        f.recovery.resumeAfterEndMs === undefined
          ? 'not before the next step'
          : s(f.recovery.resumeAfterEndMs),
        codes(f.violations ?? {}),
        f.shards
          ? `${f.shards.maxDoubleHeld}${f.shards.maxDoubleHeldAt === undefined ? '' : ` (t=${s(f.shards.maxDoubleHeldAt)})`} / ${f.shards.maxUnheld}`
          : '–',
        codes(f.errors),
        f.ackTimeouts,
        cell([...f.notes, ...(f.error ? [f.error] : [])].join('; ')),
      ]),
    ),
    '',
    mdImage('acks per second', paths.chartFile('acks')),
    '',
    '## Acks per second around each fault',
    '',
  );
  for (const f of r.faults) {
    const from = Math.max(0, Math.floor(f.startMs / 1000) - 3);
    const to = Math.min(r.acksPerSecond.length, Math.ceil(f.untilMs / 1000));
    lines.push(
      `- ${f.kind} ${f.target} (t=${s(f.startMs)}–${s(f.endMs)}): ` +
        r.acksPerSecond
          .slice(from, to)
          .map((n, i) => `${from + i}:${n}`)
          .join(' '),
    );
  }
  lines.push(
    '',
    '## Timings',
    '',
    `Startup ${s(r.timings.startupMs)}, load ${s(r.timings.loadMs)}, settle ${s(r.timings.settleMs)}, ` +
      `reading Cassandra ${s(r.timings.readMs)}; ${s(r.timings.totalMs)} in all.`,
    '',
    '## What is checked',
    '',
    'After the schedule the faults are stopped, every unacked cmid keeps being retried (a timed-out write may ' +
      "land late), the clients are closed, and every row of the keyspace's `messages` and `cmids` tables is read " +
      '(all pages). Each cmid is scored as above; besides, per conversation seq must be gap-free from 1 to its ' +
      'highest, each `cmids` row must name the row stored at its seq, each stored body must be the one its sender ' +
      'sent, and every `msg` frame pushed to a visitor or agent must be the row stored at its seq. `welcome` must ' +
      'be the first frame of every socket, and no server frame may exceed 1 MiB. See BENCHMARKS.md, "Faults".',
    '',
  );
  return `${lines.join('\n')}\n`;
}
