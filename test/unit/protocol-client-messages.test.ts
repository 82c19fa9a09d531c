import t from 'tap';
import { isExactNumber } from '../../src/exact-json.ts';
import { MAX_TOPIC_LENGTH, parseClientMessage, refOfFrame } from '../../src/protocol/client-messages.ts';
import { errorFrame, pongFrame } from '../../src/protocol/server-frames.ts';

t.test('every message type parses', async (t) => {
  const cases: Array<[string, string, unknown]> = [
    ['subscribe', '{"type":"subscribe","topic":"orders"}', { type: 'subscribe', topic: 'orders' }],
    [
      'subscribe with filter and since',
      '{"type":"subscribe","topic":"orders","filter":{"status":"open"},"since":"c-1"}',
      { type: 'subscribe', topic: 'orders', filter: { status: 'open' }, since: 'c-1' },
    ],
    ['subscribe with empty filter', '{"type":"subscribe","topic":"orders","filter":{}}', { type: 'subscribe', topic: 'orders', filter: {} }],
    ['subscribe asking for leaves', '{"type":"subscribe","topic":"orders","leaves":true}', { type: 'subscribe', topic: 'orders', leaves: true }],
    ['subscribe declining leaves', '{"type":"subscribe","topic":"orders","leaves":false}', { type: 'subscribe', topic: 'orders', leaves: false }],
    ['unsubscribe', '{"type":"unsubscribe","topic":"orders"}', { type: 'unsubscribe', topic: 'orders' }],
    ['auth', '{"type":"auth","token":"a.b.c"}', { type: 'auth', token: 'a.b.c' }],
    ['ping', '{"type":"ping"}', { type: 'ping' }],
    ['ping with string ref', '{"type":"ping","ref":"r1"}', { type: 'ping', ref: 'r1' }],
    ['ping with number ref', '{"type":"ping","ref":7}', { type: 'ping', ref: 7 }],
    ['ref zero is kept', '{"type":"ping","ref":0}', { type: 'ping', ref: 0 }],
    ['empty string ref is kept', '{"type":"ping","ref":""}', { type: 'ping', ref: '' }],
    ['subscribe with ref', '{"ref":"s","type":"subscribe","topic":"t"}', { type: 'subscribe', topic: 't', ref: 's' }],
    ['unknown fields are ignored', '{"type":"ping","extra":[1,2]}', { type: 'ping' }],
    ['surrounding whitespace', '  {"type":"ping"}\n', { type: 'ping' }],
    ['topic of the maximum length', JSON.stringify({ type: 'unsubscribe', topic: 'x'.repeat(MAX_TOPIC_LENGTH) }), { type: 'unsubscribe', topic: 'x'.repeat(256) }],
    ['unicode topic', '{"type":"subscribe","topic":"commandes-été"}', { type: 'subscribe', topic: 'commandes-été' }],
    // Characters, as PostgreSQL's length() counts them (relay.watch and relay.allow take 256): not UTF-16 units.
    ['topic of the maximum length outside the BMP', JSON.stringify({ type: 'unsubscribe', topic: '🚚'.repeat(MAX_TOPIC_LENGTH) }), { type: 'unsubscribe', topic: '🚚'.repeat(256) }],
  ];
  for (const [name, text, message] of cases) t.same(parseClientMessage(text), { ok: true, message }, name);
});

t.test('malformed frames are a bad_request saying what is wrong', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['invalid JSON', '{"type":', 'invalid JSON'],
    ['empty frame', '', 'invalid JSON'],
    ['array', '[{"type":"ping"}]', 'a message must be a JSON object, got an array'],
    ['null', 'null', 'a message must be a JSON object, got null'],
    ['number', '42', 'a message must be a JSON object, got a number'],
    ['string', '"ping"', 'a message must be a JSON object, got a string'],
    ['boolean', 'true', 'a message must be a JSON object, got a boolean'],
    ['no type', '{"topic":"orders"}', '"type" must be a string: subscribe, unsubscribe, auth or ping'],
    ['type not a string', '{"type":1}', '"type" must be a string: subscribe, unsubscribe, auth or ping'],
    ['unknown type', '{"type":"publish"}', 'unknown type "publish"'],
    ['type in another case', '{"type":"PING"}', 'unknown type "PING"'],
    ['inherited name as type', '{"type":"constructor"}', 'unknown type "constructor"'],
    ['toString as type', '{"type":"toString"}', 'unknown type "toString"'],
    ['__proto__ as type', '{"type":"__proto__"}', 'unknown type "__proto__"'],
    ['long unknown type is cut', JSON.stringify({ type: 'y'.repeat(1000) }), `unknown type "${'y'.repeat(40)}..."`],
    ['subscribe without topic', '{"type":"subscribe"}', '"topic" must be a non-empty string'],
    ['topic empty', '{"type":"subscribe","topic":""}', '"topic" must be a non-empty string'],
    ['topic a number', '{"type":"subscribe","topic":5}', '"topic" must be a non-empty string'],
    ['topic null', '{"type":"unsubscribe","topic":null}', '"topic" must be a non-empty string'],
    ['topic an object', '{"type":"unsubscribe","topic":{}}', '"topic" must be a non-empty string'],
    ['topic too long', JSON.stringify({ type: 'subscribe', topic: 'x'.repeat(257) }), '"topic" must be at most 256 characters'],
    ['topic too long outside the BMP', JSON.stringify({ type: 'subscribe', topic: '🚚'.repeat(257) }), '"topic" must be at most 256 characters'],
    ['topic with a newline', '{"type":"subscribe","topic":"a\\nb"}', '"topic" must not contain control characters'],
    ['topic with NUL', '{"type":"subscribe","topic":"a\\u0000"}', '"topic" must not contain control characters'],
    ['topic with DEL', '{"type":"subscribe","topic":"a\\u007f"}', '"topic" must not contain control characters'],
    ['topic with C1 control', '{"type":"subscribe","topic":"a\\u0085"}', '"topic" must not contain control characters'],
    ['filter an array', '{"type":"subscribe","topic":"t","filter":[]}', '"filter" must be a JSON object, got an array'],
    ['filter null', '{"type":"subscribe","topic":"t","filter":null}', '"filter" must be a JSON object, got null'],
    ['filter a string', '{"type":"subscribe","topic":"t","filter":"x"}', '"filter" must be a JSON object, got a string'],
    ['since a number', '{"type":"subscribe","topic":"t","since":12}', '"since" must be a non-empty string (a cursor)'],
    ['since empty', '{"type":"subscribe","topic":"t","since":""}', '"since" must be a non-empty string (a cursor)'],
    ['since null', '{"type":"subscribe","topic":"t","since":null}', '"since" must be a non-empty string (a cursor)'],
    ['leaves a string', '{"type":"subscribe","topic":"t","leaves":"yes"}', '"leaves" must be true or false, got a string'],
    ['leaves a number', '{"type":"subscribe","topic":"t","leaves":1}', '"leaves" must be true or false, got a number'],
    ['leaves null', '{"type":"subscribe","topic":"t","leaves":null}', '"leaves" must be true or false, got null'],
    ['auth without token', '{"type":"auth"}', '"token" must be a non-empty string'],
    ['token a number', '{"type":"auth","token":1}', '"token" must be a non-empty string'],
    ['token empty', '{"type":"auth","token":""}', '"token" must be a non-empty string'],
    ['ref an object', '{"type":"ping","ref":{}}', '"ref" must be a string or a finite number'],
    ['ref null', '{"type":"ping","ref":null}', '"ref" must be a string or a finite number'],
    ['ref too big to be finite', '{"type":"ping","ref":1e400}', '"ref" must be a string or a finite number'],
  ];
  for (const [name, text, message] of cases) {
    // A subscribe whose topic is valid names it, so that the client knows which one failed.
    const topic = /"type":"subscribe","topic":"t"/.test(text) ? { topic: 't' } : {};
    t.same(parseClientMessage(text), { ok: false, error: { code: 'bad_request', message, ...topic } }, name);
  }
});

t.test('a subscribe or unsubscribe refused for another field carries its topic; one whose topic is wrong does not', async (t) => {
  t.same(parseClientMessage('{"type":"subscribe","topic":"orders","since":5,"ref":1}'), {
    ok: false,
    error: { code: 'bad_request', message: '"since" must be a non-empty string (a cursor)', ref: 1, topic: 'orders' },
  });
  t.same(parseClientMessage('{"type":"unsubscribe","topic":"orders","ref":1e400}'), {
    ok: false,
    error: { code: 'bad_request', message: '"ref" must be a string or a finite number' },
  }, 'a ref refused before the fields are read: nothing else is read either');
  t.same(parseClientMessage('{"type":"subscribe","topic":"a\\u0007","filter":[]}'), {
    ok: false,
    error: { code: 'bad_request', message: '"topic" must not contain control characters' },
  });
});

t.test('a usable ref is kept in the error of an otherwise bad frame', async (t) => {
  const cases: Array<[string, string, string | number]> = [
    ['unknown type', '{"type":"nope","ref":"r1"}', 'r1'],
    ['no type', '{"ref":3}', 3],
    ['bad topic', '{"type":"subscribe","topic":"","ref":"r2"}', 'r2'],
    ['bad filter', '{"type":"subscribe","topic":"t","filter":1,"ref":4}', 4],
    ['bad token', '{"type":"auth","ref":"r5"}', 'r5'],
  ];
  for (const [name, text, ref] of cases) {
    const result = parseClientMessage(text);
    t.equal(result.ok, false, name);
    t.same(!result.ok && result.error.ref, ref, name);
  }
});

t.test('__proto__ and constructor keys do not matter', async (t) => {
  // JSON.parse makes these own properties; none of them may count as a field or leak in.
  const cases: Array<[string, string, unknown]> = [
    ['type hidden in __proto__', '{"__proto__":{"type":"ping"}}', { ok: false, error: { code: 'bad_request', message: '"type" must be a string: subscribe, unsubscribe, auth or ping' } }],
    ['topic hidden in __proto__', '{"type":"subscribe","__proto__":{"topic":"orders"}}', { ok: false, error: { code: 'bad_request', message: '"topic" must be a non-empty string' } }],
    ['ref hidden in __proto__', '{"type":"ping","__proto__":{"ref":"x"}}', { ok: true, message: { type: 'ping' } }],
    ['constructor key', '{"type":"ping","constructor":{"prototype":{"x":1}}}', { ok: true, message: { type: 'ping' } }],
  ];
  for (const [name, text, expected] of cases) t.same(parseClientMessage(text), expected, name);

  const withProtoFilter = parseClientMessage('{"type":"subscribe","topic":"t","filter":{"__proto__":{"status":"x"}}}');
  t.ok(withProtoFilter.ok && withProtoFilter.message.type === 'subscribe' && withProtoFilter.message.filter !== undefined, 'filter kept for parseFilter');
  t.equal(({} as Record<string, unknown>).status, undefined, 'Object.prototype untouched');
  t.equal(({} as Record<string, unknown>).x, undefined, 'Object.prototype untouched');
});

t.test('inherited properties never count as fields, even if Object.prototype is polluted', async (t) => {
  // Another library's prototype pollution must not turn into a subscription to a chosen topic.
  const polluted = ['type', 'topic', 'token', 'ref'] as const;
  const values = { type: 'ping', topic: 'orders', token: 'a.b.c', ref: 'r' };
  for (const key of polluted) Object.defineProperty(Object.prototype, key, { value: values[key], configurable: true });
  let results: unknown[];
  try {
    results = ['{}', '{"type":"subscribe"}', '{"type":"auth"}'].map((text) => parseClientMessage(text));
  } finally {
    for (const key of polluted) delete (Object.prototype as Record<string, unknown>)[key];
  }
  t.same(results, [
    { ok: false, error: { code: 'bad_request', message: '"type" must be a string: subscribe, unsubscribe, auth or ping' } },
    { ok: false, error: { code: 'bad_request', message: '"topic" must be a non-empty string' } },
    { ok: false, error: { code: 'bad_request', message: '"token" must be a non-empty string' } },
  ]);
});

t.test('refOfFrame finds a usable ref whatever else the frame holds, and nothing else', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['{"type":"ping","ref":"r1"}', 'r1'],
    ['{"type":"no such type","ref":7}', 7],
    ['{"ref":0}', 0],
    ['{"type":"ping"}', undefined],
    ['{"ref":{"nested":1}}', undefined],
    ['{"ref":1e999}', undefined],
    ['[{"ref":"r"}]', undefined],
    ['{"ref":"r"', undefined],
    ['"ref"', undefined],
  ];
  for (const [text, ref] of cases) t.equal(refOfFrame(text), ref, text);
});

t.test("a filter's numbers keep their text where a double would change them", async (t) => {
  const result = parseClientMessage('{"type":"subscribe","topic":"t","filter":{"account_id":9007199254740993,"lvl":{"lte":1e-400},"n":7}}');
  const filter = result.ok && result.message.type === 'subscribe' ? result.message.filter : undefined;
  // Before, JSON.parse made them 9007199254740992 and 0.
  t.ok(isExactNumber(filter?.account_id) && filter.account_id.value === '9007199254740993', 'the long id, as written');
  const lte = (filter?.lvl as Record<string, unknown> | undefined)?.lte;
  t.ok(isExactNumber(lte) && lte.value === '1e-400', 'the tiny bound, as written');
  t.equal(filter?.n, 7, 'a short number is a number');
  // Refs are echoed as they came: a long one is kept as its text, and written back so (server-frames).
  const long = parseClientMessage('{"type":"ping","ref":12345678901234567890}');
  t.ok(long.ok && isExactNumber(long.message.ref) && long.message.ref.value === '12345678901234567890', 'a long ref keeps its digits');
  t.equal(long.ok && pongFrame(long.message.ref), '{"type":"pong","ref":12345678901234567890}');
  t.same(parseClientMessage('{"type":"ping","ref":12.5}'), { ok: true, message: { type: 'ping', ref: 12.5 } }, 'a short one is a number');
  t.same(parseClientMessage('{"type":"ping","type":"unsubscribe","topic":"t","ref":1e400}'), {
    ok: false,
    error: { code: 'bad_request', message: '"ref" must be a string or a finite number' },
  }, 'the last of duplicate keys wins, as with JSON.parse');
});

t.test('a frame nested deeper than any filter is refused unread, whatever it holds', async (t) => {
  const nested = (number: string): string => `{"type":"ping","junk":${'['.repeat(20_000)}${number}${']'.repeat(20_000)}}`;
  const refused = { ok: false, error: { code: 'bad_request', message: 'JSON nested deeper than 40 levels' } };
  t.same(parseClientMessage(nested('9007199254740993')), refused, 'a long number deep inside: not read, so not rounded');
  t.same(parseClientMessage(nested('1')), refused, 'short numbers too: reading the nesting alone cost milliseconds');
});

t.test('a numeric ref comes back digit for digit, in every reply', async (t) => {
  const echoes: Array<[string, string]> = [
    ['9007199254740993', '9007199254740993'],
    ['12345678901234567891', '12345678901234567891'],
    ['-0.10000000000000000001', '-0.10000000000000000001'],
    ['1e5', '100000'],
    ['42', '42'],
  ];
  for (const [written, echoed] of echoes) {
    const parsed = parseClientMessage(`{"type":"ping","ref":${written}}`);
    t.equal(parsed.ok && pongFrame(parsed.message.ref), `{"type":"pong","ref":${echoed}}`, written);
  }
  const refused = parseClientMessage('{"type":"nope","ref":9007199254740993}');
  t.equal(!refused.ok && errorFrame(refused.error), '{"type":"error","code":"bad_request","message":"unknown type \\"nope\\"","ref":9007199254740993}');
  const unread = parseClientMessage(`{"ref":9007199254740993,"x":${'['.repeat(100)}${']'.repeat(100)}}`);
  t.equal(!unread.ok && errorFrame(unread.error).endsWith(',"ref":9007199254740993}'), true, 'also for a frame refused unread');
  t.same(parseClientMessage('{"type":"ping","ref":1e400}'), { ok: false, error: { code: 'bad_request', message: '"ref" must be a string or a finite number' } });
});
