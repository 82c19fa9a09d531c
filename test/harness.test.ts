import t from 'tap';
import { createTestDatabase } from './helpers/database.ts';
t.test('a test database is migrated', async (t) => {
  const db = await createTestDatabase(t);
  const { rows } = await db.pool.query(`select nspname from pg_namespace where nspname = 'relay'`);
  t.equal(rows.length, 1);
});
