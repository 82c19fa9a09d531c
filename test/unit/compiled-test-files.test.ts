// What `npm test` hands to tap: the compiled tests, made from the list of sources.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { compiledTestArgs } from '../compiled-test-files.ts';

/** A project folder with these files (empty). */
function projectWith(files: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'relay-compiled-tests-'));
  for (const file of files) {
    mkdirSync(join(root, file, '..'), { recursive: true });
    writeFileSync(join(root, file), '');
  }
  return root;
}

const root = projectWith([
  'test/e2e/b.test.ts',
  'test/e2e/a.test.ts',
  'test/unit/c.test.ts',
  'test/helpers/client.ts',
  'test/run.ts',
  // The leftover of a test that was deleted: its source is gone.
  'dist/test/e2e/gone.test.js',
]);
t.teardown(() => rmSync(root, { recursive: true, force: true }));

t.test('no file named: every test source, as its compiled file, and only those', async (t) => {
  t.strictSame(compiledTestArgs([], root), ['dist/test/e2e/a.test.js', 'dist/test/e2e/b.test.js', 'dist/test/unit/c.test.js']);
});

t.test('a file or a folder named: its tests only; tap options are kept, in front', async (t) => {
  t.strictSame(compiledTestArgs(['test/e2e/b.test.ts'], root), ['dist/test/e2e/b.test.js']);
  t.strictSame(compiledTestArgs(['--grep', 'order', 'test/unit', './test/e2e/a.test.ts'], root), [
    '--grep',
    'order',
    'dist/test/unit/c.test.js',
    'dist/test/e2e/a.test.js',
  ]);
  t.strictSame(compiledTestArgs([join(root, 'test/unit/c.test.ts')], root), ['dist/test/unit/c.test.js'], 'an absolute path too');
});

t.test('naming no test file is refused rather than running everything', async (t) => {
  t.throws(() => compiledTestArgs(['test/helpers'], root), /no test file \(\*\.test\.ts\) in test\/helpers/);
  t.throws(() => compiledTestArgs(['test/run.ts'], root), /no test file/);
  t.throws(() => compiledTestArgs(['dist/test/e2e/a.test.js'], root), /dist\/test\/e2e\/a\.test\.js is not a test under test\/: name its \.ts source/);
  t.throws(() => compiledTestArgs(['test/e2e/missing.test.ts'], root), /is not a test under test\//, 'a test that does not exist');
});

t.test('a name outside test/ is an option to tap, not a test', async (t) => {
  t.strictSame(compiledTestArgs(['--bail'], root).slice(0, 1), ['--bail']);
});
