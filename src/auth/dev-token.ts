import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { SecretAuthConfig, TokenClaimsConfig } from '../config.ts';
import type { HmacAlgorithm } from './algorithms.ts';

/** A fresh dev-mode secret: 32 random bytes, base64url (43 characters). */
export function createDevSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The auth config of dev mode: HS256 with the generated secret. */
export function devAuthConfig(secret: string): SecretAuthConfig {
  return { kind: 'secret', secret, algorithms: ['HS256'] };
}

/**
 * `claims` with the `iss` and `aud` that a relay with these settings requires, where they name
 * none: JWT_ISSUER, and the first of JWT_AUDIENCE's values (the relay accepts any one of them).
 */
export function withRequiredIssuerAndAudience(claims: Readonly<Record<string, unknown>>, settings: TokenClaimsConfig): Record<string, unknown> {
  const completed: Record<string, unknown> = { ...claims };
  if (settings.issuer !== undefined && !('iss' in completed)) completed.iss = settings.issuer;
  if (settings.audience !== undefined && !('aud' in completed)) completed.aud = settings.audience[0];
  return completed;
}

/**
 * `claims` with `role` at the dotted path of JWT_ROLE_CLAIM, first: `{"role": "admin", ...}`, or
 * `{"app": {"role": "admin"}, ...}` for `app.role`.
 */
export function withRole(claims: Readonly<Record<string, unknown>>, roleClaim: string, role: string): Record<string, unknown> {
  const segments = roleClaim.split('.');
  let value: unknown = role;
  for (let index = segments.length - 1; index > 0; index--) value = { [segments[index]!]: value };
  return { [segments[0]!]: value, ...claims };
}

/**
 * A token signed with a shared secret (HS256 unless `algorithm` says otherwise), for dev mode and
 * `npm run token`. `expiresIn` is seconds from now (a number, or a string of digits as
 * `npm run token` passes it), or a jose time span (`'24h'`). Put `iss` / `aud` in `claims`
 * (withRequiredIssuerAndAudience) when JWT_ISSUER / JWT_AUDIENCE are set, or the token is refused.
 */
export async function signDevToken(
  secret: string,
  claims: Readonly<Record<string, unknown>>,
  expiresIn: number | string,
  algorithm: HmacAlgorithm = 'HS256',
): Promise<string> {
  const nowSeconds = Math.floor(Date.now() / 1000);
  // jose reads a number as an absolute time, and refuses a string of digits (a span needs a unit);
  // seconds from now is what a caller means by either.
  const exp =
    typeof expiresIn === 'number' ? nowSeconds + expiresIn : /^\d+$/.test(expiresIn) ? nowSeconds + Number(expiresIn) : expiresIn;
  const jwt = new SignJWT({ ...claims }).setProtectedHeader({ alg: algorithm, typ: 'JWT' }).setIssuedAt(nowSeconds);
  try {
    jwt.setExpirationTime(exp);
  } catch {
    throw new Error(`expiresIn: must be seconds or a time span such as 5m, 24h or 7d, got ${JSON.stringify(String(expiresIn))}`);
  }
  return jwt.sign(new TextEncoder().encode(secret));
}
