import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
  try {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length >= 32) return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = createDevSecret();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}
