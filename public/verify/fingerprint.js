// A certificate fingerprint in its one spelling: apart from the code's words
// (public/verify/verifycode.js) because the lobby needs only this (its contacts and this
// device's identity), and the words can load with the features.

const HEX_PAIRS = /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/;

/**
 * A SHA-256 fingerprint as "AB:CD:..." (32 upper-case pairs); the SDP form with or without
 * its "sha-256" prefix, any case, with or without colons. Throws for anything else.
 * @param {string} value
 */
export function normalizeFingerprint(value) {
  let text = String(value).trim();
  if (text.toLowerCase().startsWith('sha-256')) text = text.slice('sha-256'.length).trim();
  const hex = text.replaceAll(':', '').toUpperCase();
  const pairs = hex.match(/.{1,2}/g)?.join(':') || '';
  if (!HEX_PAIRS.test(pairs)) throw new Error(`not a SHA-256 fingerprint: ${String(value).slice(0, 120)}`);
  return pairs;
}
