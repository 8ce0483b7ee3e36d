// The verification code of a link (docs/verification.md): pure, no DOM, also run by Node
// (tests/js/verifycode.test.mjs). server/verification.py is the same derivation in Python;
// both are checked against tests/js/verification-vectors.json.
//
// Version 1: the two SHA-256 DTLS fingerprints as upper-case hex pairs joined by ':',
// sorted (both ends get the same input); SHA-256 over
// "LAN Call verification v1\n" + first + "\n" + second; the first five bytes pick five
// words of WORDS (40 bits). The QR code carries the whole digest.

export const DOMAIN = 'LAN Call verification v1';
export const CODE_WORDS = 5;
export const QR_PREFIX = 'LANCALL-VERIFY-1';

// 256 short, common, distinct English nouns: one byte each. Never reorder or edit (same
// list as server/verification.py; a change is a new version of the derivation).
export const WORDS = Object.freeze([
  'acorn', 'actor', 'agent', 'alarm', 'album', 'amber', 'angle', 'apple', 'arena', 'armor', 'arrow', 'atlas', 'attic',
  'audio', 'award', 'badge', 'baker', 'bamboo', 'banjo', 'barn', 'basket', 'beach', 'beard', 'bench', 'berry',
  'bison', 'blade', 'blanket', 'block', 'bloom', 'board', 'boat', 'book', 'boot', 'bottle', 'bowl', 'brass', 'bread',
  'brick', 'bridge', 'broom', 'brush', 'bucket', 'cabin', 'cactus', 'cake', 'camel', 'camera', 'canal', 'candle',
  'canoe', 'canyon', 'carbon', 'carpet', 'carrot', 'castle', 'cedar', 'cello', 'chalk', 'chapel', 'cheese', 'cherry',
  'chess', 'chimney', 'chip', 'cider', 'circle', 'clock', 'cloud', 'clover', 'coast', 'cobra', 'coffee', 'comet',
  'copper', 'coral', 'cotton', 'cougar', 'crab', 'crane', 'cricket', 'crown', 'cube', 'cup', 'curtain', 'daisy',
  'dance', 'delta', 'denim', 'desert', 'diamond', 'dolphin', 'donkey', 'dragon', 'drum', 'eagle', 'echo', 'elephant',
  'elk', 'ember', 'engine', 'falcon', 'feather', 'fern', 'ferry', 'film', 'flag', 'flute', 'forest', 'fossil',
  'fountain', 'fox', 'frog', 'galaxy', 'garden', 'garlic', 'ginger', 'glacier', 'globe', 'goat', 'gold', 'gorilla',
  'grape', 'guitar', 'hammer', 'harbor', 'harp', 'hawk', 'helmet', 'honey', 'hotel', 'igloo', 'iris', 'island',
  'ivory', 'jacket', 'jaguar', 'jewel', 'juice', 'jungle', 'kayak', 'kettle', 'kiwi', 'koala', 'ladder', 'lagoon',
  'lake', 'lamp', 'lantern', 'lemon', 'leopard', 'letter', 'lily', 'lion', 'lizard', 'llama', 'lobster', 'lotus',
  'magnet', 'mango', 'maple', 'marble', 'meadow', 'melon', 'metal', 'mirror', 'monkey', 'moose', 'mosaic', 'motor',
  'mountain', 'muffin', 'museum', 'nest', 'oasis', 'ocean', 'olive', 'onion', 'opera', 'orange', 'orbit', 'orchid',
  'otter', 'owl', 'paddle', 'panda', 'paper', 'parrot', 'peach', 'peanut', 'pearl', 'pebble', 'pepper', 'piano',
  'pigeon', 'pillow', 'pilot', 'pine', 'planet', 'plum', 'pocket', 'polar', 'pony', 'potato', 'pumpkin', 'puzzle',
  'quartz', 'rabbit', 'radar', 'radio', 'rainbow', 'raven', 'ribbon', 'river', 'robin', 'rocket', 'ruby', 'saddle',
  'salmon', 'sandal', 'scarf', 'seal', 'shark', 'shell', 'silver', 'skate', 'sloth', 'snail', 'spider', 'spoon',
  'squid', 'statue', 'sugar', 'summit', 'sunset', 'swan', 'table', 'tiger', 'tomato', 'topaz', 'tractor', 'trumpet',
  'tulip', 'turtle', 'umbrella', 'valley', 'velvet', 'violin', 'volcano', 'wagon', 'walnut', 'whale', 'window',
  'wizard', 'yogurt', 'zebra',
]);

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

/** The `a=fingerprint:sha-256` of a description, or null. @param {string | undefined | null} sdp */
export function sdpFingerprint(sdp) {
  for (const match of String(sdp || '').matchAll(/^a=fingerprint:(\S+)\s+(\S+)\s*$/gim)) {
    if (match[1].toLowerCase() === 'sha-256') {
      try {
        return normalizeFingerprint(match[2]);
      } catch {
        return null;
      }
    }
  }
  return null;
}

/** @param {ArrayBuffer | Uint8Array} bytes */
function hex(bytes) {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The SHA-256 fingerprint of a DER certificate (what DTLS checks). @param {ArrayBuffer} der */
export async function fingerprintOfDer(der) {
  return normalizeFingerprint(hex(await crypto.subtle.digest('SHA-256', der)));
}

/** @param {string} a @param {string} b @returns {Promise<Uint8Array>} */
export async function verificationDigest(a, b) {
  const [first, second] = [normalizeFingerprint(a), normalizeFingerprint(b)].sort();
  const input = new TextEncoder().encode(`${DOMAIN}\n${first}\n${second}`);
  return new Uint8Array(await crypto.subtle.digest('SHA-256', input));
}

/** @param {Uint8Array} digest */
export function codeWords(digest) {
  return [...digest.slice(0, CODE_WORDS)].map((byte) => WORDS[byte]);
}

/**
 * The code both ends show, and what the QR code says.
 * @param {string} a @param {string} b the two fingerprints, in any order
 * @returns {Promise<{words: string[], code: string, qr: string}>}
 */
export async function verificationCode(a, b) {
  const digest = await verificationDigest(a, b);
  const words = codeWords(digest);
  return { words, code: words.join(' '), qr: `${QR_PREFIX} ${words.join('-')} ${hex(digest)}` };
}
