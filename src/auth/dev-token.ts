import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { SecretAuthConfig } from '../config.ts';

/** A fresh dev-mode secret: 32 random bytes, base64url (43 characters). */
export function createDevSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The auth config of dev mode: HS256 with the generated secret. */
export function devAuthConfig(secret: string): SecretAuthConfig {
  return { kind: 'secret', secret, algorithms: ['HS256'] };
}

/**
 * An HS256 token for dev mode. `expiresIn` is seconds from now, or a jose time span (`'24h'`).
 * Put `iss` / `aud` in `claims` when JWT_ISSUER / JWT_AUDIENCE are set, or the token is refused.
 */
export async function signDevToken(
  secret: string,
  claims: Readonly<Record<string, unknown>>,
  expiresIn: number | string,
): Promise<string> {
  const nowSeconds = Math.floor(Date.now() / 1000);
  // jose reads a number as an absolute time; a span is what a caller means here.
  const exp = typeof expiresIn === 'number' ? nowSeconds + expiresIn : expiresIn;
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(nowSeconds)
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}
