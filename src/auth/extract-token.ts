/** Where a WebSocket upgrade request may carry its token, copied out of the request. */
export interface TokenCarriers {
  /** The raw query string, with or without its leading `?`. */
  readonly query: string;
  /** The `Authorization` header, or '' when absent. */
  readonly authorization: string;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * The token of an upgrade request: `Authorization: Bearer ...` when present (the standard place),
 * else the `access_token` query parameter (browsers cannot set headers on a WebSocket), else null.
 */
export function extractToken({ query, authorization }: TokenCarriers): string | null {
  const bearer = BEARER.exec(authorization)?.[1];
  if (bearer) return bearer;
  return new URLSearchParams(query).get('access_token') || null;
}
