// The three parts of a compact JWS (RFC 7515 section 7.1), decoded and checked for shape only.

import type { JWTPayload } from 'jose';
import { parseUntrustedJsonExactly } from '../exact-json.ts';
import { isSupportedAlgorithm, type JwsAlgorithm } from './algorithms.ts';
import { TOKEN_ERROR_REASONS as REASONS, TokenError, quotedForLog, tokenErrorWith } from './token-error.ts';

export interface JwsHeader {
  readonly alg: string;
  readonly kid?: string;
  readonly [parameter: string]: unknown;
}

export interface CompactJws {
  readonly alg: JwsAlgorithm;
  readonly header: JwsHeader;
  readonly payload: JWTPayload;
  /** `header.payload` as sent: what the signature covers. */
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Splits and decodes a token. Anything that is not three base64url parts holding a JSON header
 * with a string `alg` and a JSON object payload is `malformed token`; an `alg` we do not know at
 * all (`none` among them) is `algorithm not accepted`. Header extensions we do not implement
 * (`crit`, an unencoded payload) are refused, as RFC 7515 requires.
 */
export function parseCompactJws(token: string, maxChars: number): CompactJws {
  if (token.length > maxChars) throw new TokenError(REASONS.malformed);
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError(REASONS.malformed);
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  if (!BASE64URL.test(headerPart) || !BASE64URL.test(payloadPart)) throw new TokenError(REASONS.malformed);
  if (signaturePart !== '' && !BASE64URL.test(signaturePart)) throw new TokenError(REASONS.malformed);
  const header = decodeJsonObject(headerPart, JSON.parse);
  if (typeof header.alg !== 'string') throw new TokenError(REASONS.malformed);
  if (header.crit !== undefined || header.b64 !== undefined) throw new TokenError(REASONS.malformed);
  if (!isSupportedAlgorithm(header.alg)) {
    throw tokenErrorWith(REASONS.algorithmNotAccepted, `alg ${quotedForLog(header.alg)} is not one pg-relay supports`);
  }
  // Claims are compared with row data by exact value: a number a double would change (an account
  // id of 17 digits) keeps its text, or two accounts would read as one.
  const payload = decodeJsonObject(payloadPart, parseUntrustedJsonExactly) as JWTPayload;
  return {
    alg: header.alg,
    header: header as JwsHeader,
    payload,
    signingInput: Buffer.from(`${headerPart}.${payloadPart}`, 'ascii'),
    signature: Buffer.from(signaturePart, 'base64url'),
  };
}

function decodeJsonObject(part: string, parseJson: (text: string) => unknown): Record<string, unknown> {
  let value: unknown;
  try {
    value = parseJson(Buffer.from(part, 'base64url').toString('utf8'));
  } catch (error) {
    throw new TokenError(REASONS.malformed, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TokenError(REASONS.malformed);
  return value as Record<string, unknown>;
}
