import t from 'tap';
import { extractToken } from '../../src/auth/extract-token.ts';

t.test('the token comes from the Authorization header or the access_token parameter', async (t) => {
  const cases: Array<[string, { query: string; authorization: string }, string | null]> = [
    ['query parameter', { query: 'access_token=abc.def.ghi', authorization: '' }, 'abc.def.ghi'],
    ['query with leading ?', { query: '?access_token=abc.def.ghi', authorization: '' }, 'abc.def.ghi'],
    ['query among others', { query: 'x=1&access_token=t1&y=2', authorization: '' }, 't1'],
    ['percent-encoded query', { query: 'access_token=a%2Eb', authorization: '' }, 'a.b'],
    ['Bearer header', { query: '', authorization: 'Bearer abc.def.ghi' }, 'abc.def.ghi'],
    ['scheme in lower case', { query: '', authorization: 'bearer t2' }, 't2'],
    ['scheme in upper case', { query: '', authorization: 'BEARER t3' }, 't3'],
    ['extra spaces', { query: '', authorization: 'Bearer   t4  ' }, 't4'],
    ['header wins over query', { query: 'access_token=from-query', authorization: 'Bearer from-header' }, 'from-header'],
    ['Basic header falls back to query', { query: 'access_token=q', authorization: 'Basic dXNlcjpwYXNz' }, 'q'],
    ['nothing', { query: '', authorization: '' }, null],
    ['empty parameter', { query: 'access_token=', authorization: '' }, null],
    ['other parameter only', { query: 'token=abc', authorization: '' }, null],
    ['Bearer without token', { query: '', authorization: 'Bearer' }, null],
    ['Bearer with blank token', { query: '', authorization: 'Bearer    ' }, null],
    ['two words after Bearer', { query: '', authorization: 'Bearer a b' }, null],
    ['Basic scheme', { query: '', authorization: 'Basic dXNlcjpwYXNz' }, null],
    ['scheme glued to token', { query: '', authorization: 'Bearerabc' }, null],
  ];
  for (const [name, carriers, expected] of cases) t.equal(extractToken(carriers), expected, name);
});
