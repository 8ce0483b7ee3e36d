// Space codes (docs/protocol.md §11): a short code that lists only the people who share
// it. The code is remembered on this device and sent on every identify (reconnects too);
// a link `https://HOST:PORT/?space=CODE`, or its QR code, brings another device into it.
// The lobby needs the code before it goes online, so this is apart from the panel
// (public/lobby/spaces.js), which loads with the other features.

import { SPACE } from '../core/protocol.js';

export const SPACE_KEY = 'lanCall.space';
/** No 0/O, 1/I/L: a code read aloud or off a screen is typed right. The server checks the same. */
export const SPACE_ALPHABET = SPACE.ALPHABET;
// 31^8: far past guessing at NEW_SPACE_TOTAL a minute (docs/protocol.md §11)
export const SPACE_CODE_LENGTH = 8;
export const MIN_LENGTH = 4;
export const MAX_LENGTH = 16;

/**
 * A typed or linked code in its one spelling (upper case, no spaces or dashes), or null.
 * @param {unknown} text
 */
export function cleanSpaceCode(text) {
  const code = String(text ?? '')
    .toUpperCase()
    .replace(/[\s-]+/g, '');
  if (code.length < MIN_LENGTH || code.length > MAX_LENGTH) return null;
  return [...code].every((ch) => SPACE_ALPHABET.includes(ch)) ? code : null;
}

/**
 * A new random code, each character equally likely (bytes past the last whole multiple of
 * the alphabet's size are skipped). @param {(count: number) => Uint8Array} [randomBytes]
 */
export function newSpaceCode(randomBytes = (count) => crypto.getRandomValues(new Uint8Array(count))) {
  const size = SPACE_ALPHABET.length;
  const limit = 256 - (256 % size);
  let code = '';
  while (code.length < SPACE_CODE_LENGTH) {
    for (const byte of randomBytes(SPACE_CODE_LENGTH)) {
      if (byte < limit && code.length < SPACE_CODE_LENGTH) code += SPACE_ALPHABET[byte % size];
    }
  }
  return code;
}

/** @param {string} origin e.g. https://192.168.1.20:3000 @param {string} code */
export function spaceLink(origin, code) {
  return `${origin}/?space=${encodeURIComponent(code)}`;
}

/**
 * The space to start in: a link's `?space=` wins (and is remembered), else the one
 * remembered on this device. `linked` is the raw `?space=` value, if any; `bad` says it
 * was not a code.
 * @param {string} search location.search @param {Pick<Storage, 'getItem' | 'setItem'>} storage
 * @returns {{code: string | null, linked: string | null, bad: boolean}}
 */
export function startingSpace(search, storage) {
  const linked = new URLSearchParams(search).get('space');
  const fromLink = cleanSpaceCode(linked);
  try {
    if (fromLink) storage.setItem(SPACE_KEY, fromLink);
    else return { code: cleanSpaceCode(storage.getItem(SPACE_KEY)), linked, bad: linked !== null };
  } catch {
    // storage blocked: the space lasts for this page only
  }
  return { code: fromLink, linked, bad: linked !== null && !fromLink };
}
