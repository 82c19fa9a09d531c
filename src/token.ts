// `npm run token -- '{"role":"hospital","hospital_id":"H1"}' [expiresIn]`: prints an HS256 token
// signed with JWT_SECRET, or in dev mode with the secret `npm start` keeps in .relay/.
// It reads the relay's settings as the relay does: with JWT_ISSUER / JWT_AUDIENCE set, the token
// carries them (as the relay's own dev token does) unless the claims give `iss` / `aud` themselves,
// and it is signed with the first of JWT_ALGORITHMS; a relay with those settings refuses any other.

import { devSecretPath, readOrCreateDevSecret } from './auth/dev-secret-file.ts';
import { signDevToken, withRequiredIssuerAndAudience, withRole } from './auth/dev-token.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { readClaim } from './filters/claims.ts';

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
  // The relay's own reading of its settings: the same key source, issuer, audience and algorithms.
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  // Such a relay verifies its identity provider's tokens only: a token signed here never passes.
  if (config.auth.kind === 'public-key' || config.auth.kind === 'jwks') {
    const setting = config.auth.kind === 'jwks' ? 'JWT_JWKS_URL' : 'JWT_PUBLIC_KEY';
    process.stderr.write(`${setting} is set: the relay accepts tokens from your identity provider only; npm run token signs with JWT_SECRET or dev mode's secret\n`);
    process.exit(1);
  }
  const [secret, algorithm] =
    config.auth.kind === 'secret' ? [config.auth.secret, config.auth.algorithms[0]] : [readOrCreateDevSecret(devSecretPath()), undefined];
  const withSettings = withRequiredIssuerAndAudience(claims as Record<string, unknown>, config.token);
  // A token the relay would refuse ("missing role claim") is no use to anyone.
  const { roleClaim } = config.token;
  const role = readClaim(withSettings, roleClaim);
  if (typeof role !== 'string' || role === '') {
    const example = JSON.stringify(withRole({ hospital_id: 'H1' }, roleClaim, 'hospital'));
    process.stderr.write(`the claims have no role (a non-empty string) at JWT_ROLE_CLAIM ${JSON.stringify(roleClaim)}, and the relay refuses such a token; e.g. '${example}'\n`);
    process.exit(1);
  }
  let token: string;
  try {
    token = await signDevToken(secret, withSettings, expiresIn, algorithm);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}`);
    process.exit(1);
  }
  process.stdout.write(`${token}\n`);
}

void main();
