import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readOrCreateDevSecret } from '../../src/auth/dev-secret-file.ts';

function scratchDir(t: { teardown(fn: () => Promise<void>): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'dev-secret-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const permissions = (path: string): number => statSync(path).mode & 0o777;

t.test('the secret is made on first use, readable by its owner only, and the same afterwards', async (t) => {
  const path = join(scratchDir(t), '.relay', 'dev-secret');
  const secret = readOrCreateDevSecret(path);
  t.match(secret, /^[A-Za-z0-9_-]{43}$/);
  t.equal(permissions(path), 0o600);
  t.equal(readOrCreateDevSecret(path), secret, 'kept between runs');
});

t.test('a kept secret that others may read is made its owner\'s alone, and still used', async (t) => {
  const path = join(scratchDir(t), 'dev-secret');
  const secret = 'k'.repeat(43);
  writeFileSync(path, `${secret}\n`, { mode: 0o644 });
  t.equal(permissions(path), 0o644, 'the precondition: others may read it');
  t.equal(readOrCreateDevSecret(path), secret);
  t.equal(permissions(path), 0o600);
});

t.test('a secret too short to use is replaced, and the file it was in no longer open to others', async (t) => {
  const path = join(scratchDir(t), 'dev-secret');
  writeFileSync(path, 'short\n', { mode: 0o666 });
  const secret = readOrCreateDevSecret(path);
  t.match(secret, /^[A-Za-z0-9_-]{43}$/);
  t.equal(readFileSync(path, 'utf8').trim(), secret);
  t.equal(permissions(path), 0o600);
});
