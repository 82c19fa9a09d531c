// tenants: does the cost of a delivery grow with the number of tenants? 10,000 subscribers in 1,000
// tenants against 10 subscribers in one, at the same deliveries per second; the system's CPU per
// delivery compared.
import type { StepResult } from '../lib/session.ts';
import { subscriberSpecs, tenantNames } from '../lib/tokens.ts';
import { startScenarioSession, type ScenarioContext } from './context.ts';

export interface TenantsOptions {
  readonly manyTenants: number;
  readonly perTenant: number;
  /** Rows/s in both layouts: each row reaches `perTenant` subscribers in both. */
  readonly rate: number;
  readonly stepMs: number;
}

export const TENANTS_DEFAULTS: TenantsOptions = { manyTenants: 1000, perTenant: 10, rate: 1000, stepMs: 15_000 };

export interface TenantsSystemResult {
  readonly many: StepResult & { readonly tenants: number; readonly subscribers: number };
  readonly one: StepResult & { readonly tenants: number; readonly subscribers: number };
  /** CPU per delivery with many tenants over CPU per delivery with one (target: at most 1.5). */
  readonly costRatio: number;
}

export async function runTenants(context: ScenarioContext, options: TenantsOptions = TENANTS_DEFAULTS): Promise<Record<string, TenantsSystemResult>> {
  const results: Record<string, TenantsSystemResult> = {};
  for (const spec of context.systems) {
    const layouts: Record<'many' | 'one', TenantsSystemResult['many']> = {} as never;
    for (const [layout, count] of [['many', options.manyTenants], ['one', 1]] as const) {
      const tenants = tenantNames(count);
      const specs = await subscriberSpecs(context.jwtSecret, tenants, options.perTenant, 0);
      context.log(`tenants: ${spec.name}, ${specs.length} subscribers in ${count} tenants`);
      const session = await startScenarioSession(context, spec, specs);
      try {
        await session.warmUp(tenants);
        const step = await session.step(options.rate, options.stepMs, tenants, `tenants ${spec.name} ${layout}`);
        layouts[layout] = { ...step, tenants: count, subscribers: specs.length };
      } finally {
        await session.close();
      }
    }
    results[spec.name] = {
      many: layouts.many,
      one: layouts.one,
      costRatio: Math.round((layouts.many.systemCpuUsPerDelivery / layouts.one.systemCpuUsPerDelivery) * 100) / 100,
    };
  }
  return results;
}
