// The bench: `npm run bench -- <scenario|all> [--systems a,b] [--quick] [--rates 1000,max]`. Starts its own PostgreSQL
// (or uses DATABASE_URL's), runs the scenario against pg-relay and its peers, prints a markdown
// report and writes the raw results to bench/results/. `all` runs every scenario in one invocation
// and also writes bench/RESULTS.md and its chart.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { projectPath } from '../src/project-root.ts';
import { fanoutChart } from './lib/chart.ts';
import { startBenchPostgres } from './lib/postgres.ts';
import { renderReport, type BenchRun } from './lib/report.ts';
import { SYSTEMS, type SystemSpec } from './lib/systems.ts';
import { benchSecret } from './lib/tokens.ts';
import { CATCHUP_DEFAULTS, runCatchup } from './scenarios/catchup.ts';
import { CONNECTIONS_DEFAULTS, openFilesLimit, runConnections } from './scenarios/connections.ts';
import type { ScenarioContext } from './scenarios/context.ts';
import { FANOUT_DEFAULTS, runFanout } from './scenarios/fanout.ts';
import { TENANTS_DEFAULTS, runTenants } from './scenarios/tenants.ts';
import { WRITEPATH_DEFAULTS, runWritepath } from './scenarios/writepath.ts';

interface RunFlags {
  readonly quick: boolean;
  /** fanout's write rates instead of its steps; 0 (written `max`) is as fast as the writers go. */
  readonly rates?: readonly number[];
}

/** A command line the bench cannot run: its message is printed with the usage. */
class UsageError extends Error {}

/** `--rates 1000,2000,max`. */
function parseRates(text: string): number[] {
  return text.split(',').map((part) => {
    if (part === 'max') return 0;
    // Digits only: Number('') and Number('0') are 0, which stands for max here, and a typo must not
    // start minutes of writing as fast as the writers go.
    const rate = /^\d+$/.test(part) ? Number(part) : Number.NaN;
    if (!(rate > 0)) throw new UsageError(`--rates: ${JSON.stringify(part)} is not a rate (rows per second above 0, or max)`);
    return rate;
  });
}

/** Each scenario, the systems it compares unless --systems says otherwise, and how to run it. */
const SCENARIOS = {
  fanout: {
    systems: ['pg-relay', 'socket.io', 'postgraphile', 'uws-raw'],
    run: async (context: ScenarioContext, flags: RunFlags, run: BenchRun) => {
      const options = flags.quick ? { ...FANOUT_DEFAULTS, hospitals: 10, admins: 10, rates: [250, 1000], stepMs: 2000, drainMs: 500, drainMinShare: 0 } : FANOUT_DEFAULTS;
      run.fanout = await runFanout(context, flags.rates ? { ...options, rates: flags.rates, thenMax: false } : options);
    },
  },
  tenants: {
    systems: ['pg-relay', 'socket.io'],
    run: async (context: ScenarioContext, flags: RunFlags, run: BenchRun) => {
      run.tenants = await runTenants(context, flags.quick ? { ...TENANTS_DEFAULTS, manyTenants: 50, rate: 250, stepMs: 2000 } : TENANTS_DEFAULTS);
    },
  },
  connections: {
    systems: ['pg-relay', 'socket.io'],
    run: async (context: ScenarioContext, flags: RunFlags, run: BenchRun) => {
      run.connections = await runConnections(context, flags.quick ? { ...CONNECTIONS_DEFAULTS, connections: 500 } : CONNECTIONS_DEFAULTS);
    },
  },
  catchup: {
    systems: ['pg-relay'],
    run: async (context: ScenarioContext, flags: RunFlags, run: BenchRun) => {
      run.catchup = await runCatchup(context, flags.quick ? { ...CATCHUP_DEFAULTS, rows: 5000, storm: { hospitals: 10, perHospital: 10, ordersBehind: 5 } } : CATCHUP_DEFAULTS);
    },
  },
  writepath: {
    systems: [],
    run: async (context: ScenarioContext, flags: RunFlags, run: BenchRun) => {
      run.writepath = await runWritepath(context, flags.quick ? { ...WRITEPATH_DEFAULTS, seconds: 2, rounds: 1 } : WRITEPATH_DEFAULTS);
    },
  },
} as const;

type ScenarioName = keyof typeof SCENARIOS;

function versionOf(packageJson: string): string {
  try {
    return (JSON.parse(readFileSync(projectPath(packageJson), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function systemsFor(names: readonly string[], only: readonly string[] | undefined): SystemSpec[] {
  return names
    .filter((name) => !only || only.includes(name))
    .map((name) => {
      const spec = SYSTEMS[name];
      if (!spec) throw new Error(`unknown system ${name}; one of ${Object.keys(SYSTEMS).join(', ')}`);
      return spec;
    });
}

const USAGE = `Usage: npm run bench -- <scenario|all> [--systems a,b] [--quick] [--rates 1000,2000,max]
  scenarios: ${Object.keys(SCENARIOS).join(', ')}; all runs every one and writes bench/RESULTS.md
  --systems  the systems to compare (${Object.keys(SYSTEMS).join(', ')}); each scenario has its own default
  --quick    a small version of the scenario (what npm test runs)
  --rates    fanout only: these write rates (rows/s; max: as fast as the writers go)
`;

interface CommandLine {
  readonly help: boolean;
  /** The scenario asked for, or all. */
  readonly requested: string;
  readonly names: ScenarioName[];
  readonly only: string[] | undefined;
  readonly flags: RunFlags;
}

/** The scenarios, systems and flags asked for; throws UsageError for anything it does not know. */
function parseCommandLine(args: string[]): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { systems: { type: 'string' }, quick: { type: 'boolean', default: false }, rates: { type: 'string' }, help: { type: 'boolean', default: false } },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { positionals, values } = parsed;
  const requested = positionals[0] ?? 'all';
  // --help answers whatever else the line says.
  if (values.help) return { help: true, requested, names: [], only: undefined, flags: { quick: false } };
  const names = requested === 'all' ? (Object.keys(SCENARIOS) as ScenarioName[]) : [requested as ScenarioName];
  for (const name of names) {
    if (!(name in SCENARIOS)) throw new UsageError(`unknown scenario ${name}; one of ${Object.keys(SCENARIOS).join(', ')}, all`);
  }
  const only = values.systems?.split(',');
  for (const name of only ?? []) if (!SYSTEMS[name]) throw new UsageError(`unknown system ${name}; one of ${Object.keys(SYSTEMS).join(', ')}`);
  const rates = values.rates ? parseRates(values.rates) : undefined;
  return { help: false, requested, names, only, flags: { quick: values.quick, ...(rates ? { rates } : {}) } };
}

async function main(): Promise<void> {
  let commandLine: CommandLine;
  try {
    commandLine = parseCommandLine(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  const { help, requested, names, only, flags } = commandLine;
  if (help) {
    process.stdout.write(USAGE);
    return;
  }

  const log = (line: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  const postgres = await startBenchPostgres(process.env.DATABASE_URL);
  const jwtSecret = benchSecret();
  const run: BenchRun = {
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    startedAt: new Date().toISOString(),
    finishedAt: '',
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version, openFiles: openFilesLimit() },
    postgres: { version: postgres.version, embedded: postgres.embedded },
    versions: {},
  };
  try {
    for (const name of names) {
      log(`scenario ${name}`);
      await SCENARIOS[name].run({ postgres, systems: systemsFor(SCENARIOS[name].systems, only), jwtSecret, log }, flags, run);
    }
  } finally {
    await postgres.stop();
  }
  // Read at the end: the PostGraphile peer's package is installed on its first use, during the run.
  const versions = {
    'pg-relay': versionOf('package.json'),
    'uWebSockets.js': versionOf('node_modules/uWebSockets.js/package.json'),
    'socket.io': versionOf('node_modules/socket.io/package.json'),
    postgraphile: versionOf('bench/peers/postgraphile/node_modules/postgraphile/package.json'),
  };
  const finished: BenchRun = { ...run, versions, finishedAt: new Date().toISOString() };
  const stamp = finished.startedAt.replace(/[:.]/g, '-');
  await mkdir(projectPath('bench', 'results'), { recursive: true });
  const jsonFile = projectPath('bench', 'results', `${requested}-${stamp}.json`);
  await writeFile(jsonFile, `${JSON.stringify(finished, null, 2)}\n`);
  // `all` is the run bench/RESULTS.md shows: its chart and raw results are kept beside it (committed);
  // a single scenario's, or a run cut down to some systems, rates or --quick, go to bench/results/ only.
  const official = requested === 'all' && !only && !flags.quick && !flags.rates;
  let chartFile: string | undefined;
  if (finished.fanout) {
    chartFile = official ? 'RESULTS-fanout.svg' : `results/fanout-${stamp}.svg`;
    const series = Object.entries(finished.fanout).map(([name, result]) => ({
      name,
      points: [...result.steps, ...(result.max ? [result.max] : [])].map((step) => ({
        rate: step.committedPerSecond,
        p50: step.latencyMs.p50,
        p99: step.latencyMs.p99,
        delivered: step.deliveredPerSecond,
      })),
    }));
    await writeFile(projectPath('bench', chartFile), fanoutChart(series));
  }
  const report = renderReport(finished, chartFile);
  process.stdout.write(report);
  if (official) {
    await writeFile(projectPath('bench', 'RESULTS.md'), report);
    await writeFile(projectPath('bench', 'RESULTS.json'), `${JSON.stringify(finished, null, 2)}\n`);
  }
  log(`results: ${jsonFile}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
