// Credentials out of URLs before a URL, or an error message quoting one, is logged or shown. Pure.
// One splitter of a query serves both kinds of secret: a client's token (the logger's redactUrl)
// and an identity provider's API key in JWT_JWKS_URL.

/** What a blanked value reads as. */
export const CENSOR = '[redacted]';

/**
 * Values shorter than this are not looked for in free text (see redactUrlSecrets): `v=2` or
 * `format=json` are parameters, not keys, and blanking every `2` or `json` of a message would make
 * it unreadable. The URL itself is always logged with every value blanked, whatever its length.
 */
const MIN_SECRET_CHARS = 8;

/**
 * `url` with each pair of its query replaced by what `redactPair` makes of it. The query is all
 * that follows the first `?`, split on `&` only, as URLSearchParams splits it (`#` is an ordinary
 * character); a pair's name ends at its first `=`, and `hasValue` says whether it has one.
 */
export function mapQueryPairs(url: string, redactPair: (pair: string, name: string, hasValue: boolean) => string): string {
  const start = url.indexOf('?');
  if (start < 0) return url;
  const pairs = url
    .slice(start + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      return equals < 0 ? redactPair(pair, pair, false) : redactPair(pair, pair.slice(0, equals), true);
    });
  return `${url.slice(0, start + 1)}${pairs.join('&')}`;
}

/**
 * A name or value of one query pair (no `&`, and no `=` in a name) decoded as URLSearchParams,
 * fetch and the relay decode it (percent-encoding, `+` as a space); it never throws.
 */
export function decodeQueryPart(raw: string): string {
  return new URLSearchParams(`v=${raw}`).get('v') ?? raw;
}

/**
 * A URL the relay fetches (JWT_JWKS_URL) as it may be logged or shown: every query value blanked,
 * since which parameter holds a key is the identity provider's choice (`api_key`, `key`, `sig`...),
 * and a pair without `=` blanked whole (its name may be the key). Names stay, so a line still says
 * what was sent. A `user:password@` is blanked too: start-up refuses one, but this also serves to
 * quote a raw value that failed those checks.
 */
export function redactQueryValues(url: string): string {
  const withoutUserinfo = url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#\\]*@/, `$1${CENSOR}@`);
  return mapQueryPairs(withoutUserinfo, (pair, name, hasValue) => (pair === '' ? '' : hasValue ? `${name}=${CENSOR}` : CENSOR));
}

/**
 * `text` (an error message) with the secrets of `url` blanked wherever they appear: the query as
 * written, and each value (or name-only pair) as written and as decoded. For messages of libraries
 * that may quote the address they fetched; the address itself is logged with redactQueryValues.
 */
export function redactUrlSecrets(text: string, url: string): string {
  const start = url.indexOf('?');
  if (start < 0) return text;
  const query = url.slice(start + 1);
  const secrets = new Set<string>([query]);
  mapQueryPairs(url, (pair, name, hasValue) => {
    const value = hasValue ? pair.slice(name.length + 1) : pair;
    // Also as fetch's URL parser and the provider read it.
    secrets.add(value).add(decodeQueryPart(value));
    return pair;
  });
  let redacted = text;
  // Longest first, so that a value inside the query does not break the query's match.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length >= MIN_SECRET_CHARS) redacted = redacted.split(secret).join(CENSOR);
  }
  return redacted;
}
