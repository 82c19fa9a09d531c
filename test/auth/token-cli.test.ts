// `npm run token` as the README has a newcomer use it: the built script (`dist/src/token.js`,
// compiled by `npm test`'s tsc step, as `npm run token` compiles it), its arguments as strings, and
// the relay's settings in the environment. Its tokens must pass the relay's own verifier.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { decodeJwt } from 'jose';
import t from 'tap';
import { devAuthConfig } from '../../src/auth/dev-token.ts';
import { createTokenVerifier } from '../../src/auth/verify-token.ts';
import { projectPath } from '../../src/project-root.ts';
import { nowSeconds } from '../helpers/tokens.ts';

const TOKEN_JS = projectPath('dist', 'src', 'token.js');
const SECRET = 'token-cli-test-secret-that-is-at-least-32-bytes';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the script with exactly `env` (plus PATH) over JWT_SECRET, which keeps it away from
 * .relay/dev-secret; a variable given as undefined is left unset.
 */
function runTokenScript(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const settings = Object.entries({ JWT_SECRET: SECRET, ...env }).filter((entry): entry is [string, string] => entry[1] !== undefined);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TOKEN_JS, ...args], {
      env: { PATH: process.env.PATH ?? '', ...Object.fromEntries(settings) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('a lifetime in seconds ("300") signs a token that expires in 300 s', async (t) => {
  const run = await runTokenScript(['{"role":"admin"}', '300']);
  t.equal(run.code, 0, run.stderr);
  const exp = decodeJwt(run.stdout.trim()).exp;
  t.ok(typeof exp === 'number' && Math.abs(exp - (nowSeconds() + 300)) <= 2, `exp ${exp}`);
});

t.test('a lifetime that is neither seconds nor a span exits 1 with the usage, not a stack trace', async (t) => {
  const run = await runTokenScript(['{"role":"admin"}', 'soon']);
  t.equal(run.code, 1);
  t.equal(run.stdout, '');
  t.match(run.stderr, /expiresIn: .*"soon"/);
  t.match(run.stderr, /^usage: npm run -s token/m);
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
});

t.test('with JWT_ISSUER and JWT_AUDIENCE set, the token carries them and the relay accepts it', async (t) => {
  const env = { JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'relay, other' };
  const run = await runTokenScript(['{"role":"hospital","hospital_id":"H2"}'], env);
  t.equal(run.code, 0, run.stderr);
  const verifier = createTokenVerifier(devAuthConfig(SECRET), {
    issuer: env.JWT_ISSUER,
    audience: ['relay', 'other'],
    roleClaim: 'role',
  });
  const verified = await verifier.verify(run.stdout.trim());
  t.equal(verified.role, 'hospital');
});

t.test('claims that name their own iss and aud keep them', async (t) => {
  const run = await runTokenScript(['{"role":"admin","iss":"mine","aud":"theirs"}'], {
    JWT_ISSUER: 'https://idp.example',
    JWT_AUDIENCE: 'relay',
  });
  t.equal(run.code, 0, run.stderr);
  const claims = decodeJwt(run.stdout.trim());
  t.equal(claims.iss, 'mine');
  t.equal(claims.aud, 'theirs');
});

t.test('with JWT_JWKS_URL or JWT_PUBLIC_KEY set (and no JWT_SECRET), it exits 1 saying why, instead of a token that relay refuses', async (t) => {
  const publicKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const settings: Array<[string, string]> = [
    ['JWT_JWKS_URL', 'https://idp.example/.well-known/jwks.json'],
    ['JWT_PUBLIC_KEY', publicKey],
  ];
  for (const [name, value] of settings) {
    const run = await runTokenScript(['{"role":"admin"}'], { JWT_SECRET: undefined, [name]: value });
    t.equal(run.code, 1, `${name}: exit code 1`);
    t.equal(run.stdout, '', `${name}: no token`);
    t.match(run.stderr, new RegExp(`^${name} is set: the relay accepts tokens from your identity provider only`), `${name}: says why`);
  }
});

t.test('it signs with the first of JWT_ALGORITHMS, which the relay accepts; a setting the relay refuses is refused alike', async (t) => {
  const longSecret = SECRET.repeat(2); // HS512 needs 64 bytes
  const run = await runTokenScript(['{"role":"admin"}'], { JWT_SECRET: longSecret, JWT_ALGORITHMS: 'HS512' });
  t.equal(run.code, 0, run.stderr);
  const verifier = createTokenVerifier({ kind: 'secret', secret: longSecret, algorithms: ['HS512'] }, { roleClaim: 'role' });
  t.equal((await verifier.verify(run.stdout.trim())).role, 'admin', 'an HS512 token, accepted by a relay that takes HS512 only');

  const refused = await runTokenScript(['{"role":"admin"}'], { JWT_AUDIENCE: 'relay,,other' });
  t.equal(refused.code, 1, 'a JWT_AUDIENCE the relay would refuse: exit code 1');
  t.match(refused.stderr, /JWT_AUDIENCE/, 'naming the setting, as the relay does');
});

t.test('claims without a role at JWT_ROLE_CLAIM exit 1 with an example that has one, instead of a token the relay refuses', async (t) => {
  const nested = await runTokenScript(['{"role":"hospital","hospital_id":"H1"}'], { JWT_ROLE_CLAIM: 'app.role' });
  t.equal(nested.code, 1);
  t.equal(nested.stdout, '', 'no token');
  t.match(nested.stderr, /no role .* at JWT_ROLE_CLAIM "app\.role"/);
  t.match(nested.stderr, /'\{"app":\{"role":"hospital"\},"hospital_id":"H1"\}'/, 'the example puts the role where the setting says');

  const accepted = await runTokenScript(['{"app":{"role":"hospital"},"hospital_id":"H1"}'], { JWT_ROLE_CLAIM: 'app.role' });
  t.equal(accepted.code, 0, accepted.stderr);
  const verifier = createTokenVerifier(devAuthConfig(SECRET), { roleClaim: 'app.role' });
  t.equal((await verifier.verify(accepted.stdout.trim())).role, 'hospital', 'the relay reads its role');

  const roleless = await runTokenScript(['{"sub":"x"}']);
  t.equal(roleless.code, 1, 'no role at all');
  t.match(roleless.stderr, /at JWT_ROLE_CLAIM "role"/);
});
