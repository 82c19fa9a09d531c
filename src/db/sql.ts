import { readFileSync } from 'node:fs';
import { projectPath } from '../project-root.ts';

/** The text of `sql/<name>.sql`: the relay's queries live in files, read once at start-up. */
export function loadSql(name: string): string {
  return readFileSync(projectPath('sql', `${name}.sql`), 'utf8');
}
