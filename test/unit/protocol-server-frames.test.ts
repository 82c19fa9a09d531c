import t from 'tap';
import { authedFrame, errorFrame, pongFrame, subscribedFrame, unsubscribedFrame, welcomeFrame } from '../../src/protocol/server-frames.ts';

t.test('server frames are the JSON of the contract, with the ref only when given', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['welcome', welcomeFrame({ role: 'driver', sub: 'd-1', exp: 1_900_000_000 }), '{"type":"welcome","role":"driver","sub":"d-1","exp":1900000000}'],
    ['welcome without sub and exp', welcomeFrame({ role: 'admin', sub: null, exp: null }), '{"type":"welcome","role":"admin","sub":null,"exp":null}'],
    ['subscribed', subscribedFrame('orders'), '{"type":"subscribed","topic":"orders"}'],
    ['subscribed with ref', subscribedFrame('orders', 'r1'), '{"type":"subscribed","topic":"orders","ref":"r1"}'],
    ['unsubscribed', unsubscribedFrame('orders'), '{"type":"unsubscribed","topic":"orders"}'],
    ['unsubscribed with ref', unsubscribedFrame('orders', 2), '{"type":"unsubscribed","topic":"orders","ref":2}'],
    ['authed', authedFrame(1_900_000_000), '{"type":"authed","exp":1900000000}'],
    ['authed with ref', authedFrame(null, 'a'), '{"type":"authed","exp":null,"ref":"a"}'],
    ['pong', pongFrame(), '{"type":"pong"}'],
    ['pong with ref 0', pongFrame(0), '{"type":"pong","ref":0}'],
    ['pong with empty ref', pongFrame(''), '{"type":"pong","ref":""}'],
    ['error', errorFrame({ code: 'bad_request', message: 'invalid JSON' }), '{"type":"error","code":"bad_request","message":"invalid JSON"}'],
    [
      'error with topic and ref',
      errorFrame({ code: 'forbidden', message: 'no grant', topic: 'orders', ref: 'x' }),
      '{"type":"error","code":"forbidden","message":"no grant","topic":"orders","ref":"x"}',
    ],
  ];
  for (const [name, actual, expected] of cases) t.equal(actual, expected, name);
});

t.test('client text is escaped, not spliced', async (t) => {
  const frame = subscribedFrame('a"b\\c\n', '"}');
  t.same(JSON.parse(frame), { type: 'subscribed', topic: 'a"b\\c\n', ref: '"}' });
});
