import { hash, timingSafeEqual } from 'node:crypto';

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
  // crypto.hash: one native call per digest, no Hash object: this runs for every notification.
  const inner = hash('sha256', signingKey + json, 'hex');
  const outer = hash('sha256', signingKey + inner, 'hex');
  return Buffer.from(outer.slice(0, SIGNATURE_HEX_DIGITS), 'latin1');
}
