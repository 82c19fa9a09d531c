import t from 'tap';
import { DEFAULT_FILTER_LIMITS, parseFilter } from '../../src/filters/parse-filter.ts';
import { DEFAULT_FRAME_SHAPE_LIMITS, frameShapeLimits, frameShapeProblem, topLevelRef } from '../../src/protocol/frame-shape.ts';
import { parseClientMessage } from '../../src/protocol/client-messages.ts';

const LIMITS = { maxNesting: 3, maxValues: 4 };

t.test('nesting up to the limit is read; one level more is refused unread', async (t) => {
  t.equal(frameShapeProblem('[[[1]]]', LIMITS), null);
  t.equal(frameShapeProblem('{"a":[{}]}', LIMITS), null);
  t.equal(frameShapeProblem('[[[[1]]]]', LIMITS), 'JSON nested deeper than 3 levels');
  t.equal(frameShapeProblem('[[[]]][[[]]]', { ...LIMITS, maxValues: 6 }), null, 'levels are counted down again as they close');
});

t.test('values are counted by the commas and containers that hold them, up to the limit', async (t) => {
  t.equal(frameShapeProblem('[1,2,3,4]', LIMITS), null, 'an array and three commas: 4');
  t.equal(frameShapeProblem('[1,2,3,4,5]', LIMITS), 'more than 4 values in one message');
  t.equal(frameShapeProblem('{"a":1,"b":[2,3]}', LIMITS), null);
  t.equal(frameShapeProblem('{"a":1,"b":[2,3],"c":4}', LIMITS), 'more than 4 values in one message');
});

t.test('what strings hold counts for nothing, escaped quotes included', async (t) => {
  t.equal(frameShapeProblem('["[[[[,,,,]]]]"]', LIMITS), null);
  t.equal(frameShapeProblem('["a\\\\",[[[1]]]]', LIMITS), 'JSON nested deeper than 3 levels', 'an escaped backslash ends before the quote');
  t.equal(frameShapeProblem('["a\\"[[[[",1]', LIMITS), null, 'an escaped quote does not end the string');
  t.equal(frameShapeProblem('"unterminated [[[[', LIMITS), null, 'an unterminated string runs to the end (and JSON.parse says what is wrong)');
});

t.test('the largest filter the limits allow fits the shape they give, and a message past the shape is refused unread', async (t) => {
  const depth = DEFAULT_FILTER_LIMITS.maxDepth;
  // The deepest filter: and/or levels down to a condition with an `in` list of claims.
  let deepest: unknown = { col: { in: { claim: 'a.b' } } };
  for (let level = 1; level < depth; level++) deepest = { [level % 2 ? 'and' : 'or']: [deepest, { x: { eq: level } }] };
  t.ok(parseFilter(deepest).ok, 'the filter itself is within the filter limits');
  const message = JSON.stringify({ type: 'subscribe', topic: 'orders', ref: 1, filter: deepest });
  t.equal(frameShapeProblem(message, DEFAULT_FRAME_SHAPE_LIMITS), null, `its message (${message.length} bytes) is read`);

  // The most values: every node a condition on a claim, and every `in` value.
  const conditions = Array.from({ length: DEFAULT_FILTER_LIMITS.maxNodes - 2 }, (_, i) => ({ [`c${i}`]: { eq: { claim: 'x.y' } } }));
  const widest = { and: [...conditions, { ids: { in: Array.from({ length: DEFAULT_FILTER_LIMITS.maxInValues }, (_, i) => i) } }] };
  t.ok(parseFilter(widest).ok, 'the filter itself is within the filter limits');
  t.equal(frameShapeProblem(JSON.stringify({ type: 'subscribe', topic: 'orders', ref: 1, since: 'c', leaves: true, filter: widest }), DEFAULT_FRAME_SHAPE_LIMITS), null);

  const nested = `{"type":"ping","x":${'['.repeat(32_000)}1e5${']'.repeat(32_000)}}`;
  t.match(parseClientMessage(nested), { ok: false, error: { code: 'bad_request', message: `JSON nested deeper than ${DEFAULT_FRAME_SHAPE_LIMITS.maxNesting} levels` } });
  const numbers = `{"type":"ping","x":[${Array.from({ length: 9_000 }, () => '1e5').join(',')}]}`;
  t.match(parseClientMessage(numbers), { ok: false, error: { code: 'bad_request', message: /^more than \d+ values in one message$/ } });
});

t.test('the shape follows the filter settings', async (t) => {
  t.same(frameShapeLimits({ maxFilterDepth: 64, maxFilterNodes: 10_000 }), { maxNesting: 136, maxValues: 41_032 });
});

t.test('a frame refused unread still has its top-level ref read, and only that', async (t) => {
  t.equal(topLevelRef('{"type":"ping","ref":"r1","x":[[[1]]]}'), 'r1');
  t.equal(topLevelRef('{"x":[[[1]]], "ref" :  42 }'), 42, 'after the rest, with spaces around the colon');
  t.equal(topLevelRef('{"r\\u0065f":"escaped"}'), 'escaped', 'a key written with escapes is the same key');
  t.equal(topLevelRef('{"ref":"a","ref":"b"}'), 'b', 'the last of duplicate keys, as JSON.parse keeps');
  t.equal(topLevelRef('{"filter":{"ref":"inner"},"x":["ref"]}'), undefined, 'a ref inside a member, or a string "ref" as a value, is not the message\'s');
  t.equal(topLevelRef('{"note":"\\"ref\\":1","x":1}'), undefined, 'nor one inside a string');
  t.equal(topLevelRef('{"ref":{"a":1}}'), undefined, 'a ref that is not a string or a number is none');
  t.equal(topLevelRef('{"ref":1e999}'), undefined, 'nor a number a double does not hold');
  t.equal(topLevelRef('[{"ref":1}]'), undefined, 'a top level that is not an object has no members');
  const nested = `{"type":"ping","ref":"deep","x":${'['.repeat(30_000)}1${']'.repeat(30_000)}}`;
  t.match(parseClientMessage(nested), { ok: false, error: { code: 'bad_request', ref: 'deep' } }, 'the reply to a frame refused unread carries it');
});

t.test('looking for the ref of a refused frame decodes only keys that may spell it, a few at most', async (t) => {
  const escapedKeys = `{"ref":"r",${Array.from({ length: 3_000 }, () => '"\\u0061":1').join(',')}}`;
  t.equal(topLevelRef(escapedKeys), 'r', 'past 16 escaped keys that are not `ref`, it looks at plain keys only');
  const escapedLast = `{"x":1,"r\\u0065f":"found"}`;
  t.equal(topLevelRef(escapedLast), 'found');
  t.equal(topLevelRef(`{"ref":"first",${'"abc":1,'.repeat(5_000)}"z":0}`), 'first', 'keys that cannot spell it cost nothing to pass');
});
