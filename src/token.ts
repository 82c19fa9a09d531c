// `npm run token -- '{"role":"hospital","hospital_id":"H1"}' [expiresIn]`: prints an HS256 token
// signed with JWT_SECRET, or in dev mode with the secret `npm start` keeps in .relay/.

import { devSecretPath, readOrCreateDevSecret } from './auth/dev-secret-file.ts';
import { signDevToken } from './auth/dev-token.ts';

async function main(): Promise<void> {
  const [claimsJson = '{"role":"admin","sub":"dev"}', expiresIn = '24h'] = process.argv.slice(2);
  let claims: unknown;
  try {
    claims = JSON.parse(claimsJson);
  } catch {
    claims = undefined;
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    process.stderr.write('usage: npm run token -- \'{"role":"hospital","hospital_id":"H1"}\' [24h]\n');
    process.exit(1);
  }
  const secret = process.env.JWT_SECRET || readOrCreateDevSecret(devSecretPath());
  process.stdout.write(`${await signDevToken(secret, claims as Record<string, unknown>, expiresIn)}\n`);
}

void main();
