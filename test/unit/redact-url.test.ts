// A URL the relay fetches (JWT_JWKS_URL) may carry an identity provider's API key in its query:
// it is logged with every query value blanked, and error messages are cleared of those values.
import t from 'tap';
import { redactQueryValues, redactUrlSecrets } from '../../src/redact-url.ts';

t.test('redactQueryValues blanks every query value, keeps the names, and blanks a user:password@', async (t) => {
  const cases: Array<[string, string]> = [
    ['https://idp.example/jwks', 'https://idp.example/jwks'],
    ['https://idp.example/jwks?', 'https://idp.example/jwks?'],
    ['https://idp.example/jwks?api_key=sk_live_1', 'https://idp.example/jwks?api_key=[redacted]'],
    ['https://idp.example/jwks?tenant=acme&key=k%2B1&v=2', 'https://idp.example/jwks?tenant=[redacted]&key=[redacted]&v=[redacted]'],
    // A pair without `=`: its name may be the key itself.
    ['https://idp.example/jwks?sk_live_1', 'https://idp.example/jwks?[redacted]'],
    ['https://idp.example/jwks?a=1&&b=', 'https://idp.example/jwks?a=[redacted]&&b=[redacted]'],
    // `#` is part of the value, as URLSearchParams reads it: blanked with it.
    ['https://idp.example/jwks?key=k1#frag', 'https://idp.example/jwks?key=[redacted]'],
    ['https://admin:pw@idp.example/jwks?key=k1', 'https://[redacted]@idp.example/jwks?key=[redacted]'],
    ['https://a:b@c@idp.example/jwks', 'https://[redacted]@idp.example/jwks'],
    ['https://idp.example/path@x/jwks', 'https://idp.example/path@x/jwks'],
  ];
  for (const [url, expected] of cases) t.equal(redactQueryValues(url), expected, url);
});

t.test('redactUrlSecrets blanks the query and each value of 8 characters or more, as written and decoded', async (t) => {
  const url = 'https://idp.example/jwks?api_key=sk_live%2B0123456789&v=2&sk_name_only_key';
  const cases: Array<[string, string]> = [
    [`GET ${url} failed`, 'GET https://idp.example/jwks?[redacted] failed'],
    ['the page said: invalid key sk_live+0123456789', 'the page said: invalid key [redacted]'],
    ['the page said: invalid key sk_live%2B0123456789.', 'the page said: invalid key [redacted].'],
    ['unknown parameter sk_name_only_key', 'unknown parameter [redacted]'],
    // Short values are parameters, not keys: blanking every `2` would ruin the message.
    ['connect ECONNREFUSED 127.0.0.2:443', 'connect ECONNREFUSED 127.0.0.2:443'],
  ];
  for (const [text, expected] of cases) t.equal(redactUrlSecrets(text, url), expected, text);
  t.equal(redactUrlSecrets('anything', 'https://idp.example/jwks'), 'anything', 'a URL without a query has no secret');
});
