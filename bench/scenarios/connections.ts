// connections: N authenticated, subscribed, idle connections in one process; its resident memory per
// connection and connections opened per second. Past ~28,000 connections one source address runs
// out of ports, so they are spread over 127.0.0.1-4.
import { execFileSync } from 'node:child_process';
import { rssBytes } from '../lib/process-stats.ts';
import { subscriberSpecs, tenantNames } from '../lib/tokens.ts';
import { startScenarioSession, type ScenarioContext } from './context.ts';

export interface ConnectionsOptions {
  readonly connections: number;
  readonly perTenant: number;
}

/** Descriptors the system keeps for itself: PostgreSQL, the listening socket, files. */
const RESERVED_FDS = 500;

/** This machine's open-files limit, which a process cannot raise past its hard limit. */
export function openFilesLimit(): number {
  return Number(execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim());
}

export const CONNECTIONS_DEFAULTS: ConnectionsOptions = {
  connections: Math.min(50_000, openFilesLimit() - RESERVED_FDS),
  perTenant: 20,
};

export interface ConnectionsSystemResult {
  readonly connections: number;
  readonly failed: number;
  readonly connectionsPerSecond: number;
  readonly rssBeforeMb: number;
  readonly rssAfterMb: number;
  /** Resident memory each connection added, in KB (target: at most 10). */
  readonly kbPerConnection: number;
  /** Whether every connection then received a row of its tenant (authenticated and subscribed). */
  readonly everyConnectionReceived: boolean;
}

export async function runConnections(
  context: ScenarioContext,
  options: ConnectionsOptions = CONNECTIONS_DEFAULTS,
): Promise<Record<string, ConnectionsSystemResult>> {
  const tenants = tenantNames(Math.ceil(options.connections / options.perTenant));
  const specs = (await subscriberSpecs(context.jwtSecret, tenants, options.perTenant, 0)).slice(0, options.connections);
  const results: Record<string, ConnectionsSystemResult> = {};
  for (const spec of context.systems) {
    context.log(`connections: ${spec.name}, ${specs.length} connections (this machine allows ${openFilesLimit()} open files per process)`);
    const session = await startScenarioSession(context, spec, specs, {
      loadProcesses: 4,
      connectConcurrency: 100,
      localAddresses: ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'],
    });
    try {
      let everyConnectionReceived = true;
      await session.warmUp(tenants).catch((error: unknown) => {
        context.log(String(error));
        everyConnectionReceived = false;
      });
      // After every connection subscribed and received a row: what a live idle connection holds.
      const rssAfterBytes = rssBytes(session.system.pid);
      const opened = session.connected.opened;
      results[spec.name] = {
        connections: opened,
        failed: session.connected.failed,
        connectionsPerSecond: Math.round(opened / session.connectSeconds),
        rssBeforeMb: Math.round(session.rssBeforeConnectBytes / 2 ** 20),
        rssAfterMb: Math.round(rssAfterBytes / 2 ** 20),
        kbPerConnection: Math.round(((rssAfterBytes - session.rssBeforeConnectBytes) / 1024 / opened) * 100) / 100,
        everyConnectionReceived,
      };
      context.log(`connections: ${spec.name}: ${JSON.stringify(results[spec.name])}`);
    } finally {
      await session.close();
    }
  }
  return results;
}
