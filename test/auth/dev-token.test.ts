import { decodeJwt } from 'jose';
import t from 'tap';
import { createDevSecret, devAuthConfig, signDevToken, withRole } from '../../src/auth/dev-token.ts';
import { createTokenVerifier } from '../../src/auth/verify-token.ts';
import { nowSeconds } from '../helpers/tokens.ts';

t.test('a dev secret is 32 random bytes, base64url', async (t) => {
  const secret = createDevSecret();
  t.match(secret, /^[A-Za-z0-9_-]{43}$/);
  t.equal(Buffer.from(secret, 'base64url').length, 32);
  t.not(createDevSecret(), secret, 'each call makes a new one');
});

t.test('a dev token verifies with the dev auth config, and carries exp and the given claims', async (t) => {
  const secret = createDevSecret();
  const token = await signDevToken(secret, { role: 'admin', sub: 'dev', iss: 'relay-dev', aud: 'relay' }, 3600);
  const verifier = createTokenVerifier(devAuthConfig(secret), { issuer: 'relay-dev', audience: ['relay'], roleClaim: 'role' });
  const verified = await verifier.verify(token);
  t.equal(verified.role, 'admin');
  t.equal(verified.sub, 'dev');
  t.ok(verified.exp !== null && Math.abs(verified.exp - (nowSeconds() + 3600)) <= 2, `exp ${verified.exp} is an hour from now`);
  t.same(devAuthConfig(secret).algorithms, ['HS256']);
});

t.test('expiresIn may be a jose time span', async (t) => {
  const claims = decodeJwt(await signDevToken(createDevSecret(), { role: 'admin' }, '2h'));
  t.ok(typeof claims.exp === 'number' && Math.abs(claims.exp - (nowSeconds() + 7200)) <= 2, `exp ${claims.exp}`);
});

t.test('a dev token does not verify with another secret', async (t) => {
  const token = await signDevToken(createDevSecret(), { role: 'admin' }, 60);
  const verifier = createTokenVerifier(devAuthConfig(createDevSecret()), { roleClaim: 'role' });
  await t.rejects(verifier.verify(token), { name: 'TokenError', message: 'bad signature' });
});

t.test('expiresIn may be a string of seconds, as `npm run token -- CLAIMS 300` passes it', async (t) => {
  // The CLI hands its second argument over as a string; jose alone refuses "300" (a span needs a unit).
  const claims = decodeJwt(await signDevToken(createDevSecret(), { role: 'admin' }, '300'));
  t.ok(typeof claims.exp === 'number' && Math.abs(claims.exp - (nowSeconds() + 300)) <= 2, `exp ${claims.exp}`);
});

t.test('an expiresIn that is neither seconds nor a time span is refused with what was given', async (t) => {
  await t.rejects(signDevToken(createDevSecret(), { role: 'admin' }, '5 mins please'), {
    message: /expiresIn: .*"5 mins please"/,
  });
});

t.test('withRole puts the role at the dotted path of JWT_ROLE_CLAIM, first', async (t) => {
  t.equal(JSON.stringify(withRole({ hospital_id: 'H1' }, 'role', 'hospital')), '{"role":"hospital","hospital_id":"H1"}');
  t.equal(JSON.stringify(withRole({ sub: 'dev' }, 'app.role', 'admin')), '{"app":{"role":"admin"},"sub":"dev"}');
  t.same(withRole({}, 'a.b.c', 'r'), { a: { b: { c: 'r' } } });
});
