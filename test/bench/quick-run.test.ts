// The bench itself, in its quick form, against the test server: pg-relay and the no-database limit
// through fanout, and pg-relay through catchup, so that a change that breaks the harness (or makes pg-relay lose or repeat a
// delivery under load) fails here and not on the day someone sizes a deployment.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import t from 'tap';
import type { DrainResult, StepResult } from '../../bench/lib/session.ts';
import type { CatchupResult } from '../../bench/scenarios/catchup.ts';
import { projectPath } from '../../src/project-root.ts';

const run = promisify(execFile);

t.test('npm run bench -- fanout --quick delivers every row once to every subscriber that must get it', async (t) => {
  const adminUrl = process.env.RELAY_TEST_ADMIN_URL;
  if (!adminUrl) throw new Error('run through npm test: RELAY_TEST_ADMIN_URL is not set');
  const { stdout, stderr } = await run(
    process.execPath,
    [projectPath('dist', 'bench', 'run.js'), 'fanout', '--quick', '--systems', 'pg-relay,uws-raw'],
    { env: { ...process.env, DATABASE_URL: adminUrl }, maxBuffer: 16 * 2 ** 20 },
  );
  const resultsFile = /results: (\S+\.json)/.exec(stderr)?.[1];
  if (!resultsFile) throw new Error(`the bench named no results file:\n${stderr}`);
  const results = JSON.parse(await readFile(resultsFile, 'utf8')) as {
    fanout: Record<string, { subscribers: number; steps: StepResult[]; drain?: DrainResult; notDrained?: string }>;
  };
  for (const system of ['pg-relay', 'uws-raw']) {
    const result = results.fanout[system];
    t.ok(result, `${system} was measured`);
    // Quick fanout: 10 hospitals of 10 subscribers, 10 admins: each row reaches 20 subscribers.
    t.equal(result?.subscribers, 110, `${system}: every subscriber connected`);
    for (const step of result?.steps ?? []) {
      t.equal(step.missing, 0, `${system}: nothing lost`);
      t.equal(step.duplicates, 0, `${system}: nothing repeated`);
      t.ok(step.deliveries >= step.rows * 20, `${system}: ${step.deliveries} deliveries for ${step.rows} rows`);
      const waits = Object.values(step.waitingForCpu);
      t.ok(waits.length === 3 && waits.every((wait) => wait >= 0), `${system}: waits for a core measured (${waits.join(' / ')} s/s)`);
    }
  }
  // The drain: rows committed while the relay was stopped all arrive, once each, after it resumes.
  const drain = results.fanout['pg-relay']?.drain;
  t.ok(drain && drain.rows > 0, `pg-relay was drained of ${drain?.rows} rows`);
  t.equal(drain?.missing, 0, 'the drain lost nothing');
  t.equal(drain?.duplicates, 0, 'the drain repeated nothing');
  t.ok(drain && drain.deliveries >= drain.rows * 20 && drain.seconds > 0, `${drain?.deliveries} deliveries in ${drain?.seconds} s`);
  t.equal(results.fanout['uws-raw']?.notDrained, 'it has no database', 'the no-database limit is not drained, and says why');
  t.match(stdout, /## Targets/, 'the markdown report is printed');
  t.match(stdout, /\| pg-relay \| 250 \|/, 'with a row per step');
});

t.test('npm run bench -- catchup --quick: one client resumes through the backlog, then many resume at once, none missing or repeated', async (t) => {
  const adminUrl = process.env.RELAY_TEST_ADMIN_URL;
  if (!adminUrl) throw new Error('run through npm test: RELAY_TEST_ADMIN_URL is not set');
  const { stdout, stderr } = await run(process.execPath, [projectPath('dist', 'bench', 'run.js'), 'catchup', '--quick'], {
    env: { ...process.env, DATABASE_URL: adminUrl },
    maxBuffer: 16 * 2 ** 20,
  });
  const resultsFile = /results: (\S+\.json)/.exec(stderr)?.[1];
  if (!resultsFile) throw new Error(`the bench named no results file:\n${stderr}`);
  const { catchup } = JSON.parse(await readFile(resultsFile, 'utf8')) as { catchup: CatchupResult };
  t.equal(catchup.received, catchup.rows, `the backlog of ${catchup.rows} rows arrived`);
  t.equal(catchup.duplicates, 0, 'none of it twice');
  t.equal(catchup.outOfOrder, 0, 'in commit order');
  const { storm } = catchup;
  t.equal(storm.clients, 100, 'the quick storm: 100 hospital subscribers');
  t.equal(storm.hospitals, 10, 'of 10 hospitals');
  t.equal(storm.ordersBehind, 5, '5 orders behind each');
  t.equal(storm.missing, 0, 'every client got every event it missed');
  t.equal(storm.duplicates, 0, 'none twice');
  t.ok(storm.resumeSeconds > 0 && storm.resumesPerSecond > 0, `${storm.resumesPerSecond} resumes/s`);
  t.match(stdout, /\| Clients \| Hospitals \| Orders behind each \|/, 'the report has the storm table');
});

t.test('npm run bench -- --help prints the usage; an unknown option, scenario, system or rate says so, with the usage, and exits 2', async (t) => {
  const bench = projectPath('dist', 'bench', 'run.js');
  const help = await run(process.execPath, [bench, '--help']);
  t.match(help.stdout, /^Usage: npm run bench -- <scenario\|all>/);
  t.match(help.stdout, /scenarios: fanout, tenants, connections, catchup, writepath/);
  const helpAnyway = await run(process.execPath, [bench, 'fanoutt', '--help']);
  t.match(helpAnyway.stdout, /^Usage: npm run bench/, '--help answers whatever else the line says');
  const refusals: Array<[string[], RegExp]> = [
    [['--bogus'], /^Unknown option '--bogus'/],
    [['fanoutt'], /^unknown scenario fanoutt; one of fanout, tenants/],
    [['fanout', '--systems', 'pg-relay,kafka'], /^unknown system kafka; one of pg-relay/],
    [['fanout', '--rates', '1000,fast'], /^--rates: "fast" is not a rate/],
    [['fanout', '--rates', '0'], /^--rates: "0" is not a rate/],
    [['fanout', '--rates', '1000,'], /^--rates: "" is not a rate/],
    [['fanout', '--rates', '1e3'], /^--rates: "1e3" is not a rate/],
  ];
  for (const [args, message] of refusals) {
    const refused = await run(process.execPath, [bench, ...args]).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    t.equal(refused?.code, 2, `${args.join(' ')}: exit code 2`);
    t.match(refused?.stderr ?? '', message, `${args.join(' ')}: says what it does not know`);
    t.match(refused?.stderr ?? '', /\n\nUsage: npm run bench/, `${args.join(' ')}: with the usage`);
    t.notMatch(refused?.stderr ?? '', /\n    at /, `${args.join(' ')}: no stack trace`);
  }
});
