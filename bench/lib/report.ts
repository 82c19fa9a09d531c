// A bench run as markdown: the targets of issue 4 with what this run measured, then one table per
// scenario. Pure: the run object in, text out.
import type { CatchupResult } from '../scenarios/catchup.ts';
import type { ConnectionsSystemResult } from '../scenarios/connections.ts';
import type { FanoutSystemResult } from '../scenarios/fanout.ts';
import type { TenantsSystemResult } from '../scenarios/tenants.ts';
import type { WritepathResult } from '../scenarios/writepath.ts';
import type { StepResult } from './session.ts';

/** Everything one invocation measured. */
export interface BenchRun {
  readonly command: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: { readonly cpus: number; readonly cpuModel?: string; readonly memoryGb: number; readonly node: string; readonly openFiles: number };
  readonly postgres: { readonly version: string; readonly embedded: boolean };
  readonly versions: Record<string, string>;
  fanout?: Record<string, FanoutSystemResult>;
  tenants?: Record<string, TenantsSystemResult>;
  connections?: Record<string, ConnectionsSystemResult>;
  catchup?: CatchupResult;
  writepath?: WritepathResult;
}

const RELAY = 'pg-relay';

function table(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.map((cell) => String(cell)).join(' | ')} |`),
  ].join('\n');
}

/** The fan-out step with the most deliveries per second, the max step included. */
export function peakStep(result: FanoutSystemResult): StepResult {
  return allSteps(result).reduce((best, step) => (step.deliveredPerSecond > best.deliveredPerSecond ? step : best));
}

function allSteps(result: FanoutSystemResult): StepResult[] {
  return result.max ? [...result.steps, result.max] : result.steps;
}

/** The fan-out step written at `rate` rows/s, if the run got that far. */
function stepAt(result: FanoutSystemResult, rate: number): StepResult | undefined {
  return result.steps.find((step) => step.offeredRate === rate);
}

/** A share in percent to one decimal, rounded down: a share short of a target never reads as reaching it. */
function percentDown(fraction: number): string {
  return (Math.floor(fraction * 1000) / 10).toFixed(1);
}

function met(ok: boolean | undefined): string {
  return ok === undefined ? 'not measured' : ok ? 'met' : '**missed**';
}

function targets(run: BenchRun): string {
  const rows: Array<[string, string, string]> = [];
  const relay = run.fanout?.[RELAY];
  const gateway = run.fanout?.['socket.io'];
  if (relay && gateway) {
    const ratio = peakStep(relay).deliveredPerSecond / peakStep(gateway).deliveredPerSecond;
    const cpuRatio = peakStep(gateway).systemCpuUsPerDelivery / peakStep(relay).systemCpuUsPerDelivery;
    const drains =
      relay.drain && gateway.drain
        ? { relay: relay.drain, gateway: gateway.drain, ratio: relay.drain.deliveredPerSecond / gateway.drain.deliveredPerSecond }
        : undefined;
    const drained = drains
      ? `; draining a backlog once the database was done writing: ${drains.ratio.toFixed(1)}x (${drains.relay.deliveredPerSecond} vs ${drains.gateway.deliveredPerSecond}/s), ` +
        `the relay using ${drains.relay.systemCpuCores} of a core and the load ${drains.relay.loadCpuCores}, socket.io ${drains.gateway.systemCpuCores}`
      : '';
    const lost = sum(relay, 'missing') + (relay.drain?.missing ?? 0);
    rows.push([
      'Fan-out: at least 10x the socket.io gateway\'s deliveries/s at saturation, 0 lost',
      `${ratio.toFixed(1)}x (${peakStep(relay).deliveredPerSecond} vs ${peakStep(gateway).deliveredPerSecond}/s); ` +
        `CPU per delivery ${cpuRatio.toFixed(1)}x less; missing ${lost}${drained}`,
      fanoutVerdict(ratio, drains?.ratio, cpuRatio, lost === 0, peakStep(relay).systemCpuCores),
    ]);
  }
  if (relay) {
    const at1000 = stepAt(relay, 1000);
    rows.push([
      'Latency: p99 at most 5 ms at 1,000 rows/s to 1,000+ subscribers',
      at1000 ? `p99 ${at1000.latencyMs.p99} ms (p50 ${at1000.latencyMs.p50})${relayShare(at1000)}` : 'the run did not reach 1,000 rows/s',
      met(at1000 ? at1000.latencyMs.p99 <= 5 : undefined),
    ]);
    // PostgreSQL's highest commit rate is known once some step asked for more than it committed
    // (or ran as fast as the writers go); it is the step with the most commits, which may be an
    // earlier one: flat out, commits can come a little slower than at a set rate just below.
    const top = allSteps(relay).reduce((best, step) => (step.committedPerSecond > best.committedPerSecond ? step : best));
    const writersSaturated = allSteps(relay).some((step) => step.offeredRate === 0 || step.committedPerSecond < 0.9 * step.offeredRate);
    const fraction = top.deliveredPerSecond / (top.committedPerSecond * relay.deliveriesPerRow);
    rows.push([
      'At PostgreSQL\'s highest commit rate through the triggers, the relay delivers at least 90% of it',
      writersSaturated
        ? `${percentDown(fraction)}% (${top.committedPerSecond} rows/s committed, ${top.missing} missing)`
        : 'the relay fell behind before the writers saturated',
      met(writersSaturated && fraction >= 0.9 && top.missing === 0),
    ]);
  }
  const connections = run.connections?.[RELAY];
  if (connections) {
    rows.push([
      '50,000 authenticated idle connections at no more than 10 KB RSS each',
      `${connections.connections} connections (this machine's limit: ${run.machine.openFiles} open files per process), ${connections.kbPerConnection} KB each`,
      met(connections.kbPerConnection <= 10 && connections.everyConnectionReceived) +
        (connections.connections < 50_000 ? ' (per connection; 50,000 not reachable here)' : ''),
    ]);
  }
  const tenants = run.tenants?.[RELAY];
  if (tenants) {
    rows.push([
      'Tenants: cost per delivery with 10,000 subscribers in 1,000 tenants within 1.5x of 10 in one',
      `${tenants.costRatio}x (${tenants.many.systemCpuUsPerDelivery} vs ${tenants.one.systemCpuUsPerDelivery} µs CPU per delivery)`,
      met(tenants.costRatio <= 1.5),
    ]);
  }
  if (run.writepath) {
    const writepath = run.writepath;
    const unflushed = writepath.withoutFlushWait;
    const flushedOk = writepath.watchedOverPlain >= 0.5;
    const unflushedOk = unflushed.watchedOverPlain >= 0.5;
    const verdict =
      flushedOk === unflushedOk ? met(flushedOk) : flushedOk ? 'met as the server commits; **missed** without waiting for the disk' : '**missed** as the server commits; met without waiting for the disk';
    const triggersAloneOk = !unflushedOk && unflushed.watchedWithoutReaderOverPlain >= 0.5;
    rows.push([
      'Write path: a watched UPDATE keeps at least half the throughput of a plain one',
      `${writepath.watchedOverPlain} (${writepath.tps.watched} vs ${writepath.tps.plain} tps) as the server commits (${commitMode(writepath)}); ` +
        `${unflushed.watchedOverPlain} (${unflushed.tps.watched} vs ${unflushed.tps.plain} tps) with commits that do not wait for the disk (synchronous_commit = off), ` +
        `the relay reading on the same cores with ${unflushed.readerCores.relay} of a core (its reads took ${unflushed.readerCores.postgres} of PostgreSQL's); ` +
        `${unflushed.watchedWithoutReaderOverPlain} (${unflushed.tps.watchedWithoutReader} tps) with the relay stopped: the triggers' own cost`,
      triggersAloneOk ? `${verdict} (met by the triggers alone)` : verdict,
    ]);
  }
  return table(['Target', 'This run', ''], rows);
}

/**
 * Deliveries/s decide: with live writes, or else draining a backlog once PostgreSQL was done
 * writing (each system at its own pace, not the commit rate's). Short of 10x both ways, the
 * relay's own CPU per delivery does, if it had a core to spare at its peak: then PostgreSQL and
 * the load generator saturated the shared cores first (as issue 4 allows).
 */
function fanoutVerdict(ratio: number, drainRatio: number | undefined, cpuRatio: number, nothingLost: boolean, relayCoresAtPeak: number): string {
  if (!nothingLost) return '**missed** (deliveries lost)';
  if (ratio >= 10) return 'met';
  if (drainRatio !== undefined && drainRatio >= 10) {
    return "met draining a backlog (with live writes, PostgreSQL's commit rate on the shared cores caps deliveries/s first)";
  }
  if (cpuRatio >= 10 && relayCoresAtPeak < 0.9) {
    return `met on CPU per delivery (deliveries/s: the relay used ${relayCoresAtPeak} of a core at its peak; PostgreSQL and the load took the rest)`;
  }
  return '**missed**';
}

/**
 * The part of a step's latency that the relay measured itself, from the commit to its send, and
 * how long the relay waited for a core meanwhile.
 */
function relayShare(step: StepResult): string {
  const lag = step.systemLagMs ? `; of it, commit to the relay's send: p99 at most ${step.systemLagMs.p99} ms (p50 ${step.systemLagMs.p50})` : '';
  return `${lag}; the relay waited for a core ${step.waitingForCpu.system} s of each second, PostgreSQL ${step.waitingForCpu.postgres}, the load ${step.waitingForCpu.load}`;
}

function sum(result: FanoutSystemResult, key: 'missing' | 'duplicates'): number {
  return allSteps(result).reduce((total, step) => total + step[key], 0);
}

function fanoutSection(fanout: Record<string, FanoutSystemResult>): string {
  const header = ['System', 'Rows/s asked', 'Rows/s committed', 'Deliveries/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'Commit p50/p99 ms', 'Commit to send p50/p99 ms (at most)', 'Missing', 'Dup.', 'System CPU (cores)', 'µs CPU / delivery', 'RSS MB', 'PostgreSQL CPU', 'Load CPU', 'Waiting for a core, s/s: system / PostgreSQL / load'];
  const rows = Object.entries(fanout).flatMap(([name, result]) =>
    allSteps(result).map((step) => [
      name,
      step.offeredRate || 'max',
      step.committedPerSecond,
      step.deliveredPerSecond,
      step.latencyMs.p50,
      step.latencyMs.p95,
      step.latencyMs.p99,
      step.latencyMs.max,
      step.commitMs ? `${step.commitMs.p50} / ${step.commitMs.p99}` : '-',
      step.systemLagMs ? `${step.systemLagMs.p50} / ${step.systemLagMs.p99}` : '-',
      step.missing,
      step.duplicates,
      step.systemCpuCores,
      step.systemCpuUsPerDelivery,
      step.systemRssMb,
      step.postgresCpuCores,
      step.loadCpuCores,
      `${step.waitingForCpu.system} / ${step.waitingForCpu.postgres} / ${step.waitingForCpu.load}`,
    ]),
  );
  const connect = Object.entries(fanout).map(([name, result]) => `${name} ${result.connectionsPerSecond}/s`).join(', ');
  return `${table(header, rows)}\n\nConnections opened per second (authenticated and subscribed): ${connect}.${drainSection(fanout)}`;
}

/** The drains of a fan-out run, if any system was drained. */
function drainSection(fanout: Record<string, FanoutSystemResult>): string {
  const drained = Object.entries(fanout).flatMap(([name, result]) => (result.drain ? [[name, result.drain] as const] : []));
  if (drained.length === 0) return '';
  const skipped = Object.entries(fanout).flatMap(([name, result]) => (result.notDrained ? [`${name} (${result.notDrained})`] : []));
  const rows = drained.map(([name, drain]) => [
    name,
    drain.rows,
    drain.deliveries,
    drain.seconds,
    drain.deliveredPerSecond,
    drain.missing,
    drain.duplicates,
    drain.systemCpuCores,
    drain.systemCpuUsPerDelivery,
    drain.postgresCpuCores,
    drain.loadCpuCores,
  ]);
  return (
    '\n\n### Draining a backlog\n\n' +
    table(['System', 'Rows committed while it was stopped', 'Deliveries', 'Seconds', 'Deliveries/s', 'Missing', 'Dup.', 'System CPU (cores)', 'µs CPU / delivery', 'PostgreSQL CPU', 'Load CPU'], rows) +
    '\n\nEach system was stopped (SIGSTOP) while the writers committed as fast as they could, then resumed; ' +
    'deliveries/s count from its resumption to the last delivery. PostgreSQL had finished writing by then, so the rate is ' +
    "the system's own, as far as the load generator on the same cores keeps up with it." +
    (skipped.length ? ` Not drained: ${skipped.join('; ')}.` : '')
  );
}

function tenantsSection(tenants: Record<string, TenantsSystemResult>): string {
  const rows = Object.entries(tenants).flatMap(([name, result]) =>
    [result.many, result.one].map((layout) => [
      name,
      layout.tenants,
      layout.subscribers,
      layout.committedPerSecond,
      layout.deliveredPerSecond,
      layout.latencyMs.p99,
      layout.missing,
      layout.systemCpuCores,
      layout.systemCpuUsPerDelivery,
    ]),
  );
  const ratios = Object.entries(tenants).map(([name, result]) => `${name} ${result.costRatio}x`).join(', ');
  return `${table(['System', 'Tenants', 'Subscribers', 'Rows/s', 'Deliveries/s', 'p99 ms', 'Missing', 'System CPU (cores)', 'µs CPU / delivery'], rows)}\n\nCost per delivery, many tenants over one: ${ratios}.`;
}

function connectionsSection(connections: Record<string, ConnectionsSystemResult>): string {
  return table(
    ['System', 'Connections', 'Failed', 'Opened/s', 'RSS before MB', 'RSS after MB', 'KB per connection', 'All received a row'],
    Object.entries(connections).map(([name, result]) => [
      name,
      result.connections,
      result.failed,
      result.connectionsPerSecond,
      result.rssBeforeMb,
      result.rssAfterMb,
      result.kbPerConnection,
      result.everyConnectionReceived ? 'yes' : 'no',
    ]),
  );
}

function catchupSection(catchup: CatchupResult): string {
  const { storm } = catchup;
  return [
    table(
      ['Rows', 'Received', 'Duplicates', 'Out of order', 'Seconds', 'Events/s', 'Relay RSS before/peak MB', 'One SELECT of the log (s)'],
      [[catchup.rows, catchup.received, catchup.duplicates, catchup.outOfOrder, catchup.seconds, catchup.eventsPerSecond, `${catchup.relayRssBeforeMb} / ${catchup.relayRssPeakMb}`, catchup.selectSeconds]],
    ),
    `Then ${storm.clients} hospital subscribers (${storm.hospitals} hospitals) resumed at once, as the clients of a relay that stopped reconnect to another: each had the cursor of its hospital's last order and was away while its hospital got ${storm.ordersBehind} more, so each replay read the ${storm.eventsAfterCursors} events of the topic after its cursor (clients of one hospital share their reads).`,
    table(
      ['Clients', 'Hospitals', 'Orders behind each', 'Events after the cursors', 'All subscribed afresh (s)', 'All resumed and caught up (s)', 'Resumes/s', 'Missing', 'Dup.'],
      [[storm.clients, storm.hospitals, storm.ordersBehind, storm.eventsAfterCursors, storm.freshSeconds, storm.resumeSeconds, storm.resumesPerSecond, storm.missing, storm.duplicates]],
    ),
  ].join('\n\n');
}

/** How the server's own commits wait for the disk: its fsync and synchronous_commit. */
function commitMode(writepath: WritepathResult): string {
  return `fsync ${writepath.server.fsync}, synchronous_commit ${writepath.server.synchronousCommit}`;
}

function writepathSection(writepath: WritepathResult): string {
  const unflushed = writepath.withoutFlushWait;
  return [
    table(
      [
        'Commits',
        'Clients',
        'Plain UPDATE tps',
        'Watched by pg-relay',
        'Watched, relay stopped',
        'Hand-written notify trigger',
        'Bare pg_notify per transaction',
        'Watched / plain',
        'Watched, relay stopped / plain',
        'Notify trigger / plain',
        'Wake-ups per watched transaction',
      ],
      [
        [`as the server makes them (${commitMode(writepath)})`, writepath.clients, writepath.tps.plain, writepath.tps.watched, '-', writepath.tps.notifyTrigger, writepath.tps.bareNotify, writepath.watchedOverPlain, '-', writepath.notifyTriggerOverPlain, writepath.wakeupsPerWatchedTransaction],
        ['not waiting for the disk (synchronous_commit = off)', writepath.clients, unflushed.tps.plain, unflushed.tps.watched, unflushed.tps.watchedWithoutReader, unflushed.tps.notifyTrigger, '-', unflushed.watchedOverPlain, unflushed.watchedWithoutReaderOverPlain, unflushed.notifyTriggerOverPlain, '-'],
      ],
    ),
    `Each the median of ${writepath.rounds} pgbench runs of ${writepath.seconds} s, the scripts taking turns; a pg-relay process reads the log throughout, except in the runs with the relay stopped. ` +
      'Where commits wait for the disk, the flush sets much of the pace for every script alike; without that wait, the ratios are those of the CPU each transaction costs. ' +
      `There, the relay shares the two cores with the writers: while it read the watched UPDATEs it used ${unflushed.readerCores.relay} of a core, and PostgreSQL's backends serving its reads ${unflushed.readerCores.postgres}. ` +
      'With the relay stopped, the watched UPDATE pays only for its triggers: what the writers keep when the relay runs on a host of its own, less the database side of its reads.',
  ].join('\n\n');
}

/** The whole report. `chartFile` is the chart's name next to the report, when one was drawn. */
export function renderReport(run: BenchRun, chartFile?: string): string {
  const sections = [
    '# Bench results',
    `Command: \`${run.command}\`, started ${run.startedAt}, finished ${run.finishedAt}.`,
    `Machine: ${run.machine.cpus} cores (${run.machine.cpuModel ?? 'unknown'}), ${run.machine.memoryGb} GB, Node ${run.machine.node}, ` +
      `${run.machine.openFiles} open files per process. PostgreSQL ${run.postgres.version} (${run.postgres.embedded ? 'embedded' : 'DATABASE_URL'}), ` +
      `shared by the systems under test, PostgreSQL and the load generator. Versions: ${Object.entries(run.versions)
        .map(([name, version]) => `${name} ${version}`)
        .join(', ')}.`,
    '## Targets',
    targets(run),
  ];
  if (run.fanout) {
    sections.push('## Fan-out', fanoutSection(run.fanout));
    if (chartFile) sections.push(`![latency and deliveries against write rate](${chartFile})`);
  }
  if (run.tenants) sections.push('## Tenants', tenantsSection(run.tenants));
  if (run.connections) sections.push('## Idle connections', connectionsSection(run.connections));
  if (run.catchup) sections.push('## Catch-up', catchupSection(run.catchup));
  if (run.writepath) sections.push('## Write path', writepathSection(run.writepath));
  return `${sections.join('\n\n')}\n`;
}
