import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { projectPath } from '../project-root.ts';
import { createDevSecret } from './dev-token.ts';

/** Where dev mode keeps its secret: beside the embedded database, ignored by git. */
export const devSecretPath = (): string => projectPath('.relay', 'dev-secret');

/**
 * Dev mode's secret, kept in a file beside the embedded database so that tokens survive a restart
 * and `npm run token` can sign more. Made on first use, readable by its owner only.
 */
export function readOrCreateDevSecret(path: string): string {
  keepToOwner(path);
  try {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length >= 32) return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = createDevSecret();
  mkdirSync(dirname(path), { recursive: true });
  // The mode applies only to a file this call creates: one that exists was made private above.
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/**
 * Whoever reads the secret can sign tokens of any role: a file that others may read or write (a
 * copy, an archive unpacked, a umask) is made its owner's alone before it is used or rewritten.
 */
function keepToOwner(path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if ((mode & 0o077) === 0) return;
  try {
    chmodSync(path, mode & 0o700);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    throw new Error(`${path} may be read by others, and belongs to another user: make it readable by its owner only (chmod 600), or remove it`, { cause: error });
  }
}
