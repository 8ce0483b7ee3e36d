// Space codes (docs/protocol.md §11): one spelling, random codes from the alphabet, and
// where the first space comes from (a link wins over the remembered one).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  SPACE_ALPHABET,
  SPACE_KEY,
  cleanSpaceCode,
  newSpaceCode,
  spaceLink,
  startingSpace,
} from '../../public/lobby/spaces.js';

function memoryStorage(initial = {}) {
  const items = new Map(Object.entries(initial));
  return {
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => items.set(key, String(value)),
    items,
  };
}

test('a typed code has one spelling; anything else is not a code', () => {
  assert.equal(cleanSpaceCode(' k7m-2qx '), 'K7M2QX');
  for (const bad of [
    '',
    'AB2',
    'K7M2Q0',
    'K7M2QI',
    'L'.repeat(6),
    'Q'.repeat(17),
    null,
    undefined,
    'K7M2QX!',
  ]) {
    assert.equal(cleanSpaceCode(bad), null, String(bad));
  }
});

test('new codes are 8 characters of the alphabet, and bytes that would bias them are skipped', () => {
  const codes = new Set(Array.from({ length: 200 }, () => newSpaceCode()));
  assert.ok(codes.size > 190);
  for (const code of codes) assert.equal(cleanSpaceCode(code), code);
  // 248..255 would make the first eight characters likelier: they are skipped.
  const feeds = [
    [255, 248, 0, 1, 2, 3],
    [4, 5, 6, 7],
  ];
  assert.equal(
    newSpaceCode(() => Uint8Array.from(feeds.shift() ?? [])),
    SPACE_ALPHABET.slice(0, 8),
  );
});

test('a link wins and is remembered; otherwise the remembered space; a bad link changes nothing', () => {
  const storage = memoryStorage({ [SPACE_KEY]: 'PQR234' });
  assert.deepEqual(startingSpace('', storage), { code: 'PQR234', linked: null, bad: false });
  assert.deepEqual(startingSpace('?space=k7m2qx', storage), { code: 'K7M2QX', linked: 'k7m2qx', bad: false });
  assert.equal(storage.items.get(SPACE_KEY), 'K7M2QX');
  assert.deepEqual(startingSpace('?space=nope0', storage), { code: 'K7M2QX', linked: 'nope0', bad: true });
  assert.deepEqual(startingSpace('', memoryStorage()), { code: null, linked: null, bad: false });
  assert.equal(spaceLink('https://192.168.1.20:3000', 'K7M2QX'), 'https://192.168.1.20:3000/?space=K7M2QX');
});
