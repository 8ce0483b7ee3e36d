// The verification code of a link (docs/verification.md): pure, no DOM, also run by Node
// (tests/js/verifycode.test.mjs). server/verification.py is the same derivation in Python;
// both are checked against tests/js/verification-vectors.json.
//
// Version 2 (issue 18, 25): each side first sends a commitment, SHA-256 over
// "LAN Call commit v2\n" + its fingerprint + "\n" + its nonce, and its nonce (32 random
// bytes, hex) only once it has the other's commitment; the code is SHA-256 over
// "LAN Call verification v2\n" and the two (fingerprint, nonce) pairs in sorted order, the
// first five bytes picking five words of WORDS (40 bits). A side in the middle must fix
// its nonce before it learns the honest one, so no search beforehand helps (2^-40 a try).
// Fingerprints: SHA-256, upper-case hex pairs joined by ':'. The QR carries the digest.

import { normalizeFingerprint } from './fingerprint.js';

export { normalizeFingerprint };

export const DOMAIN = 'LAN Call verification v2';
export const COMMIT_DOMAIN = 'LAN Call commit v2';
export const CODE_WORDS = 5;
export const QR_PREFIX = 'LANCALL-VERIFY-2';
export const NONCE_BYTES = 32;

// 256 short, common, distinct English nouns: one byte each. Never reorder or edit (same
// list as server/verification.py; a change is a new version of the derivation).
export const WORDS = Object.freeze([
  'acorn',
  'actor',
  'agent',
  'alarm',
  'album',
  'amber',
  'angle',
  'apple',
  'arena',
  'armor',
  'arrow',
  'atlas',
  'attic',
  'audio',
  'award',
  'badge',
  'baker',
  'bamboo',
  'banjo',
  'barn',
  'basket',
  'beach',
  'beard',
  'bench',
  'berry',
  'bison',
  'blade',
  'blanket',
  'block',
  'bloom',
  'board',
  'boat',
  'book',
  'boot',
  'bottle',
  'bowl',
  'brass',
  'bread',
  'brick',
  'bridge',
  'broom',
  'brush',
  'bucket',
  'cabin',
  'cactus',
  'cake',
  'camel',
  'camera',
  'canal',
  'candle',
  'canoe',
  'canyon',
  'carbon',
  'carpet',
  'carrot',
  'castle',
  'cedar',
  'cello',
  'chalk',
  'chapel',
  'cheese',
  'cherry',
  'chess',
  'chimney',
  'chip',
  'cider',
  'circle',
  'clock',
  'cloud',
  'clover',
  'coast',
  'cobra',
  'coffee',
  'comet',
  'copper',
  'coral',
  'cotton',
  'cougar',
  'crab',
  'crane',
  'cricket',
  'crown',
  'cube',
  'cup',
  'curtain',
  'daisy',
  'dance',
  'delta',
  'denim',
  'desert',
  'diamond',
  'dolphin',
  'donkey',
  'dragon',
  'drum',
  'eagle',
  'echo',
  'elephant',
  'elk',
  'ember',
  'engine',
  'falcon',
  'feather',
  'fern',
  'ferry',
  'film',
  'flag',
  'flute',
  'forest',
  'fossil',
  'fountain',
  'fox',
  'frog',
  'galaxy',
  'garden',
  'garlic',
  'ginger',
  'glacier',
  'globe',
  'goat',
  'gold',
  'gorilla',
  'grape',
  'guitar',
  'hammer',
  'harbor',
  'harp',
  'hawk',
  'helmet',
  'honey',
  'hotel',
  'igloo',
  'iris',
  'island',
  'ivory',
  'jacket',
  'jaguar',
  'jewel',
  'juice',
  'jungle',
  'kayak',
  'kettle',
  'kiwi',
  'koala',
  'ladder',
  'lagoon',
  'lake',
  'lamp',
  'lantern',
  'lemon',
  'leopard',
  'letter',
  'lily',
  'lion',
  'lizard',
  'llama',
  'lobster',
  'lotus',
  'magnet',
  'mango',
  'maple',
  'marble',
  'meadow',
  'melon',
  'metal',
  'mirror',
  'monkey',
  'moose',
  'mosaic',
  'motor',
  'mountain',
  'muffin',
  'museum',
  'nest',
  'oasis',
  'ocean',
  'olive',
  'onion',
  'opera',
  'orange',
  'orbit',
  'orchid',
  'otter',
  'owl',
  'paddle',
  'panda',
  'paper',
  'parrot',
  'peach',
  'peanut',
  'pearl',
  'pebble',
  'pepper',
  'piano',
  'pigeon',
  'pillow',
  'pilot',
  'pine',
  'planet',
  'plum',
  'pocket',
  'polar',
  'pony',
  'potato',
  'pumpkin',
  'puzzle',
  'quartz',
  'rabbit',
  'radar',
  'radio',
  'rainbow',
  'raven',
  'ribbon',
  'river',
  'robin',
  'rocket',
  'ruby',
  'saddle',
  'salmon',
  'sandal',
  'scarf',
  'seal',
  'shark',
  'shell',
  'silver',
  'skate',
  'sloth',
  'snail',
  'spider',
  'spoon',
  'squid',
  'statue',
  'sugar',
  'summit',
  'sunset',
  'swan',
  'table',
  'tiger',
  'tomato',
  'topaz',
  'tractor',
  'trumpet',
  'tulip',
  'turtle',
  'umbrella',
  'valley',
  'velvet',
  'violin',
  'volcano',
  'wagon',
  'walnut',
  'whale',
  'window',
  'wizard',
  'yogurt',
  'zebra',
]);

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

/** @param {string} text */
async function sha256(text) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

/** A fresh nonce: 32 random bytes as lower-case hex. */
export function newNonce() {
  return hex(crypto.getRandomValues(new Uint8Array(NONCE_BYTES)));
}

/** What a side sends first. @param {string} fingerprint its own @param {string} nonce */
export async function commitment(fingerprint, nonce) {
  return hex(await sha256(`${COMMIT_DOMAIN}\n${normalizeFingerprint(fingerprint)}\n${nonce}`));
}

/**
 * @param {string} fingerprintA @param {string} nonceA one side
 * @param {string} fingerprintB @param {string} nonceB the other (the order does not matter)
 * @returns {Promise<Uint8Array>}
 */
export async function verificationDigest(fingerprintA, nonceA, fingerprintB, nonceB) {
  const pairs = [
    [normalizeFingerprint(fingerprintA), nonceA],
    [normalizeFingerprint(fingerprintB), nonceB],
  ];
  // Sorted as Python sorts tuples: by fingerprint, then by nonce.
  pairs.sort((x, y) => (x[0] === y[0] ? (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) : x[0] < y[0] ? -1 : 1));
  return sha256(`${DOMAIN}\n${pairs[0][0]}\n${pairs[0][1]}\n${pairs[1][0]}\n${pairs[1][1]}`);
}

/** @param {Uint8Array} digest */
export function codeWords(digest) {
  return [...digest.slice(0, CODE_WORDS)].map((byte) => WORDS[byte]);
}

/**
 * The code both ends show, and what the QR code says.
 * @param {string} fingerprintA @param {string} nonceA @param {string} fingerprintB @param {string} nonceB
 * @returns {Promise<{words: string[], code: string, qr: string}>}
 */
export async function verificationCode(fingerprintA, nonceA, fingerprintB, nonceB) {
  const digest = await verificationDigest(fingerprintA, nonceA, fingerprintB, nonceB);
  const words = codeWords(digest);
  return { words, code: words.join(' '), qr: `${QR_PREFIX} ${words.join('-')} ${hex(digest)}` };
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * One link's commit-then-reveal (docs/protocol.md §6): feed it the other side's
 * `verify-commit` / `verify-reveal`, send what it returns, in order. `result` is set once
 * their nonce matched their commitment; `failed` says why not (nothing later is taken).
 * The same rules as server/verification.py's CodeExchange.
 */
export class CodeExchange {
  /** @param {string} localFingerprint */
  constructor(localFingerprint) {
    this.local = normalizeFingerprint(localFingerprint);
    this.nonce = newNonce();
    this.committed = false;
    /** @type {string | null} */
    this.theirCommitment = null;
    /** @type {string | null} */
    this.failed = null;
    /** @type {{words: string[], code: string, qr: string} | null} */
    this.result = null;
    /** @type {Promise<unknown>} one step at a time, so what each returns is sent in order */
    this.steps = Promise.resolve();
  }

  /**
   * @param {() => Promise<{type: string, data: string}[]>} step
   * @returns {Promise<{type: string, data: string}[]>}
   */
  serial(step) {
    const next = this.steps.then(step);
    this.steps = next.catch(() => {});
    return next;
  }

  /** Our commitment, once: sent when the channel opens. @returns {Promise<{type: string, data: string}[]>} */
  start() {
    return this.serial(() => this.commit());
  }

  /**
   * @param {string} type @param {unknown} data @param {string | null} remoteFingerprint
   * @returns {Promise<{type: string, data: string}[]>}
   */
  receive(type, data, remoteFingerprint) {
    return this.serial(() => this.take(type, data, remoteFingerprint));
  }

  /** @returns {Promise<{type: string, data: string}[]>} */
  async commit() {
    if (this.committed) return [];
    this.committed = true;
    return [{ type: 'verify-commit', data: await commitment(this.local, this.nonce) }];
  }

  /**
   * @param {string} type @param {unknown} data @param {string | null} remoteFingerprint
   * @returns {Promise<{type: string, data: string}[]>}
   */
  async take(type, data, remoteFingerprint) {
    if (this.failed || this.result) return [];
    if (typeof data !== 'string' || !HEX64.test(data)) {
      this.failed = 'malformed';
      return [];
    }
    if (type === 'verify-commit') {
      if (this.theirCommitment !== null) {
        this.failed = 'committed twice';
        return [];
      }
      this.theirCommitment = data;
      // Our nonce goes only after our own commitment, whichever side was first.
      return [...(await this.commit()), { type: 'verify-reveal', data: this.nonce }];
    }
    if (type === 'verify-reveal') {
      if (this.theirCommitment === null) {
        this.failed = 'revealed before committing';
        return [];
      }
      const expected = this.theirCommitment;
      if (!remoteFingerprint || (await commitment(remoteFingerprint, data)) !== expected) {
        this.failed = 'does not match its commitment';
        return [];
      }
      this.result = await verificationCode(this.local, this.nonce, remoteFingerprint, data);
    }
    return [];
  }
}
