// Reads under way are shared by key, and only while under way (src/db/shared-reads.ts).
import t from 'tap';
import { createSharedReads } from '../../src/db/shared-reads.ts';

/** Reads the test finishes by hand, in the order they were started. */
function manualReads<T>() {
  const started: { resolve: (value: T) => void; reject: (error: Error) => void }[] = [];
  const read = (): Promise<T> => new Promise<T>((resolve, reject) => started.push({ resolve, reject }));
  return { read, starts: () => started.length, finish: (index: number, value: T) => started[index]!.resolve(value), fail: (index: number, error: Error) => started[index]!.reject(error) };
}

t.test('the same read asked while one is under way gets its result, without a second query', async (t) => {
  const shared = createSharedReads<string>();
  const reads = manualReads<string>();
  const first = shared.run('a', reads.read);
  const second = shared.run('a', reads.read);
  t.equal(reads.starts(), 1, 'one read for both');
  reads.finish(0, 'rows');
  t.same(await Promise.all([first, second]), ['rows', 'rows'], 'both get its result');
});

t.test('another key is another read; a finished read is never served again', async (t) => {
  const shared = createSharedReads<string>();
  const reads = manualReads<string>();
  const a = shared.run('a', reads.read);
  const b = shared.run('b', reads.read);
  t.equal(reads.starts(), 2, 'one read per key');
  reads.finish(1, 'b rows');
  t.equal(await b, 'b rows');
  const again = shared.run('b', reads.read);
  t.equal(reads.starts(), 3, 'once finished, the same key reads anew');
  reads.finish(2, 'newer b rows');
  t.equal(await again, 'newer b rows', 'and gets the new result');
  reads.finish(0, 'a rows');
  t.equal(await a, 'a rows', 'the other key got its own');
});

t.test('a failed read fails everyone who shared it, and is forgotten', async (t) => {
  const shared = createSharedReads<string>();
  const reads = manualReads<string>();
  const first = shared.run('a', reads.read);
  const second = shared.run('a', reads.read);
  reads.fail(0, new Error('connection lost'));
  await t.rejects(first, /connection lost/);
  await t.rejects(second, /connection lost/);
  const retry = shared.run('a', reads.read);
  t.equal(reads.starts(), 2, 'the next ask reads again');
  reads.finish(1, 'rows');
  t.equal(await retry, 'rows');
});
