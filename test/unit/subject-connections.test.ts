// RELAY_MAX_CONNECTIONS_PER_SUBJECT's count, apart from the sockets.
import t from 'tap';
import { createSubjectConnections } from '../../src/ws/subject-connections.ts';

t.test('a subject is admitted up to the limit; a close makes room; other subjects count apart', async (t) => {
  const subjects = createSubjectConnections(2);
  t.ok(subjects.admits('u1'));
  subjects.opened('u1');
  subjects.opened('u1');
  t.notOk(subjects.admits('u1'), 'the third of u1 is refused');
  t.ok(subjects.admits('u2'), 'u2 is not held back by u1');
  subjects.closed('u1');
  t.ok(subjects.admits('u1'), 'room again after a close');
});

t.test('tokens without sub are not counted, and no limit admits every subject', async (t) => {
  const limited = createSubjectConnections(1);
  limited.opened(null);
  limited.opened(null);
  t.ok(limited.admits(null));
  const unlimited = createSubjectConnections(null);
  for (let i = 0; i < 5; i++) unlimited.opened('u1');
  t.ok(unlimited.admits('u1'));
});

t.test('a subject whose connections all closed is counted from 0 again', async (t) => {
  const subjects = createSubjectConnections(1);
  subjects.opened('u1');
  subjects.closed('u1');
  subjects.opened('u1');
  t.notOk(subjects.admits('u1'), 'one open again: at the limit');
  subjects.closed('u1');
  t.ok(subjects.admits('u1'));
});
