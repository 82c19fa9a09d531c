// `npm run token -- '{"role":"hospital","hospital_id":"H1"}' [expiresIn]`: prints an HS256 token
// signed with JWT_SECRET, or in dev mode with the secret `npm start` keeps in .relay/.
// With JWT_ISSUER / JWT_AUDIENCE set, the token carries them (as the relay's own dev token does)
// unless the claims give `iss` / `aud` themselves: a relay with those settings refuses a token without.

import { devSecretPath, readOrCreateDevSecret } from './auth/dev-secret-file.ts';
import { signDevToken } from './auth/dev-token.ts';

const USAGE = 'usage: npm run -s token -- \'{"role":"hospital","hospital_id":"H1"}\' [24h | 5m | 300 (seconds)]\n';

async function main(): Promise<void> {
  const [claimsJson = '{"role":"admin","sub":"dev"}', expiresIn = '24h'] = process.argv.slice(2);
  let claims: unknown;
  try {
    claims = JSON.parse(claimsJson);
  } catch {
    claims = undefined;
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    process.stderr.write(USAGE);
    process.exit(1);
  }
  const withSettings: Record<string, unknown> = { ...(claims as Record<string, unknown>) };
  const issuer = process.env.JWT_ISSUER;
  if (issuer && !('iss' in withSettings)) withSettings.iss = issuer;
  // Like the relay's dev token: the first audience of the list, any one of which the relay accepts.
  const audience = process.env.JWT_AUDIENCE?.split(',')[0]?.trim();
  if (audience && !('aud' in withSettings)) withSettings.aud = audience;
  // Such a relay verifies its identity provider's tokens only: a token signed here never passes.
  const providerKey = ['JWT_PUBLIC_KEY', 'JWT_JWKS_URL'].find((name) => process.env[name]);
  if (!process.env.JWT_SECRET && providerKey) {
    process.stderr.write(`${providerKey} is set: the relay accepts tokens from your identity provider only; npm run token signs with JWT_SECRET or dev mode's secret\n`);
    process.exit(1);
  }
  const secret = process.env.JWT_SECRET || readOrCreateDevSecret(devSecretPath());
  let token: string;
  try {
    token = await signDevToken(secret, withSettings, expiresIn);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}`);
    process.exit(1);
  }
  process.stdout.write(`${token}\n`);
}

void main();
