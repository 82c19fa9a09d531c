// The subscribers' tokens: HS256 with the run's secret, valid for the run, claims as in
// bench/peers/README.md.
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { SubscriberSpec } from './subscriber-messages.ts';

/** A fresh secret per run. */
export function benchSecret(): string {
  return randomBytes(32).toString('hex');
}

/** Subscriber specs: `perTenant` hospital subscribers for each tenant, then `admins` admins. */
export async function subscriberSpecs(
  secret: string,
  tenants: readonly string[],
  perTenant: number,
  admins: number,
): Promise<SubscriberSpec[]> {
  const key = new TextEncoder().encode(secret);
  const sign = (claims: Record<string, unknown>, sub: string): Promise<string> =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('2h').sign(key);
  const specs: SubscriberSpec[] = [];
  for (const tenant of tenants) {
    for (let i = 0; i < perTenant; i++) {
      specs.push({ token: await sign({ role: 'hospital', hospital_id: tenant }, `${tenant}-${i}`), tenant });
    }
  }
  for (let i = 0; i < admins; i++) specs.push({ token: await sign({ role: 'admin' }, `admin-${i}`), tenant: null });
  return specs;
}

/** Tenant names H1..Hn. */
export function tenantNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `H${i + 1}`);
}
