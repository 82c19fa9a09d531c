import { createHash, timingSafeEqual } from 'node:crypto';

const SIGNATURE_HEX_DIGITS = 32;

/**
 * Splits a `relay_events` payload into its JSON, or null when its signature is not the one
 * relay.sign (migrations/relay) makes with this key: sha256(key || sha256(key || json)), 128 bits.
 * Any role that can connect may NOTIFY; only the schema's owner can read the key.
 */
export function verifySignedPayload(signingKey: string, payload: string): string | null {
  if (payload.length <= SIGNATURE_HEX_DIGITS) return null;
  const signature = payload.slice(0, SIGNATURE_HEX_DIGITS);
  const json = payload.slice(SIGNATURE_HEX_DIGITS);
  const expected = signPayload(signingKey, json);
  const given = Buffer.from(signature, 'latin1');
  return given.length === expected.length && timingSafeEqual(given, expected) ? json : null;
}

/** The signature of `json` as relay.sign computes it, as latin1 bytes of its hex digits. */
export function signPayload(signingKey: string, json: string): Buffer {
  const inner = createHash('sha256').update(signingKey).update(json, 'utf8').digest('hex');
  const outer = createHash('sha256').update(signingKey).update(inner).digest('hex');
  return Buffer.from(outer.slice(0, SIGNATURE_HEX_DIGITS), 'latin1');
}
