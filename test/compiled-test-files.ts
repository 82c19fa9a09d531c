// Which files `npm test` hands to tap: the compiled tests (dist/test/**/*.test.js) that its tsc has
// just built, not the TypeScript sources. tap loads a .ts test through ts-node, which transpiled the
// test and every module it imports again in each test process: about 2 s of CPU per e2e file, a
// fifth of a run on two cores. The list is made from the sources, so the leftover .js of a test
// that was deleted or renamed never runs.
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';

/**
 * tap's arguments with every test source (or folder of them) named in `args` replaced by the
 * compiled files, and all of the project's tests when none is named. Other arguments (tap's
 * options) are kept as they are.
 */
export function compiledTestArgs(args: readonly string[], root: string): string[] {
  const options: string[] = [];
  const named: string[] = [];
  const files: string[] = [];
  for (const arg of args) {
    const sources = testSourcesAt(root, arg);
    // A test named by its compiled file, or one not under test/, would otherwise run with all the others.
    if (sources === undefined && /\.test\.[cm]?[jt]s$/.test(arg)) throw new Error(`${arg} is not a test under test/: name its .ts source`);
    if (sources === undefined) options.push(arg);
    else {
      named.push(arg);
      files.push(...sources);
    }
  }
  if (named.length === 0) files.push(...(testSourcesAt(root, 'test') ?? []));
  else if (files.length === 0) throw new Error(`no test file (*.test.ts) in ${named.join(', ')}`);
  return [...options, ...files.map(compiledPathOf)];
}

/** The *.test.ts files at `arg` (a file or a folder under test/), or undefined if it names none. */
function testSourcesAt(root: string, arg: string): string[] | undefined {
  const path = relative(root, resolve(root, arg));
  if (path !== 'test' && !path.startsWith(`test${sep}`)) return undefined;
  let stats;
  try {
    stats = statSync(join(root, path));
  } catch {
    return undefined;
  }
  if (stats.isFile()) return path.endsWith('.test.ts') ? [path] : [];
  return readdirSync(join(root, path), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.test.ts'))
    .map((name) => join(path, name))
    .sort();
}

/** test/e2e/x.test.ts -> dist/test/e2e/x.test.js, as tsconfig.json's outDir places it. */
function compiledPathOf(source: string): string {
  return join('dist', source.replace(/\.ts$/, '.js'));
}
