// Group-call rules (public/calls/grouplogic.js): the per-peer video budget, the active speaker
// and the words for several names (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  balancedGrid,
  listNames,
  mayAdoptCall,
  pickSpeaker,
  scaleFor,
  SPEAKING_LEVEL,
  typingText,
  videoBudget,
} from '../../public/calls/grouplogic.js';

test('the video budget per remote member shrinks as the mesh grows; a 1:1 call is not limited', () => {
  assert.deepEqual(videoBudget(1), { maxBitrate: undefined, maxHeight: undefined });
  assert.deepEqual(videoBudget(2), { maxBitrate: 800_000, maxHeight: 540 });
  assert.deepEqual(videoBudget(3), { maxBitrate: 600_000, maxHeight: 480 });
  assert.deepEqual(videoBudget(4), { maxBitrate: 350_000, maxHeight: 360 });
  assert.deepEqual(videoBudget(5), { maxBitrate: 350_000, maxHeight: 360 });
  // A phone in a 6-person call sends five streams: under 2 Mbps in all.
  assert.ok(5 * videoBudget(5).maxBitrate <= 2_000_000);
  for (let n = 2; n <= 5; n += 1) assert.ok(videoBudget(n + 1).maxBitrate <= videoBudget(n).maxBitrate);
});

test('scaling brings a camera down to the budget height, never up', () => {
  assert.equal(scaleFor(720, 360), 2);
  assert.equal(scaleFor(1080, 540), 2);
  assert.equal(scaleFor(360, 540), 1);
  assert.equal(scaleFor(720, undefined), 1);
  assert.equal(scaleFor(0, 360), 1); // size not known yet
});

test('the active speaker is the loudest voice, held against a near tie, none in silence', () => {
  const levels = (entries) => new Map(Object.entries(entries));
  assert.equal(pickSpeaker(levels({ a: 0.3, b: 0.1 }), null), 'a');
  assert.equal(pickSpeaker(levels({ a: 0.001, b: SPEAKING_LEVEL / 2 }), 'a'), null);
  // Bob speaks a little louder than Ann, who is still talking: Ann keeps it (no flicker).
  assert.equal(pickSpeaker(levels({ a: 0.2, b: 0.25 }), 'a'), 'a');
  // Clearly louder: Bob takes over.
  assert.equal(pickSpeaker(levels({ a: 0.1, b: 0.3 }), 'a'), 'b');
  // Ann stopped: the other voice takes over at once.
  assert.equal(pickSpeaker(levels({ a: 0.005, b: 0.05 }), 'a'), 'b');
  // The speaker who left is not kept.
  assert.equal(pickSpeaker(levels({ b: 0.05 }), 'a'), 'b');
});

test('names and typing indicators read as a sentence', () => {
  assert.equal(listNames([]), '');
  assert.equal(listNames(['Ann']), 'Ann');
  assert.equal(listNames(['Ann', 'Bob']), 'Ann and Bob');
  assert.equal(listNames(['Ann', 'Bob', 'Cy']), 'Ann, Bob and Cy');
  assert.equal(typingText([]), '');
  assert.equal(typingText(['Ann']), 'Ann is typing…');
  assert.equal(typingText(['Ann', 'Bob']), 'Ann and Bob are typing…');
  assert.equal(typingText(['A', 'B', 'C', 'D']), 'Several people are typing…');
});

test(
  'a call that lists us is ours only if we are in it, joining it, ' + 'or started or accepted it (issue 18)',
  () => {
    const base = { me: 'me', group: null, joining: null, consented: () => false };
    // An attacker's accept made a "call" around an idle person: never adopted.
    assert.equal(mayAdoptCall({ ...base, id: 'c1', members: ['mallory', 'me'] }), false);
    // The 1:1 call we dialled or answered: adopted.
    const withBob = (/** @type {string} */ id) => id === 'bob';
    assert.equal(mayAdoptCall({ ...base, id: 'c1', members: ['me', 'bob'], consented: withBob }), true);
    assert.equal(mayAdoptCall({ ...base, id: 'c1', members: ['mallory', 'me'], consented: withBob }), false);
    // Several others in a call we never joined: not ours, even with a consented link.
    assert.equal(
      mayAdoptCall({ ...base, id: 'c1', members: ['me', 'bob', 'mallory'], consented: withBob }),
      false,
    );
    // In a call already, another call id is not ours; our own call's updates are.
    assert.equal(
      mayAdoptCall({ ...base, group: 'c1', id: 'c2', members: ['me', 'bob'], consented: withBob }),
      false,
    );
    assert.equal(mayAdoptCall({ ...base, group: 'c1', id: 'c1', members: ['me', 'bob', 'cat'] }), true);
    // The call we asked to join (an invitation accepted).
    assert.equal(mayAdoptCall({ ...base, joining: 'c3', id: 'c3', members: ['ann', 'bob', 'me'] }), true);
    // A list without us is never adopted.
    assert.equal(mayAdoptCall({ ...base, group: 'c1', id: 'c1', members: ['bob', 'cat'] }), false);
  },
);

test('the grid is balanced: same-shape tiles as large as fit, no tall slices (issue 19, 8)', () => {
  // A laptop's call area (1280x800 less the header and the controls).
  const laptop = (n) => balancedGrid(n, 1248, 644, 10);
  assert.deepEqual([laptop(4).cols, laptop(4).rows], [2, 2]); // four people: 2x2, not 4 slices
  assert.deepEqual([laptop(6).cols, laptop(6).rows], [3, 2]); // six: 3x2, no empty band
  for (const n of [2, 3, 4, 5, 6, 7]) {
    const { cols, rows, tileWidth, tileHeight } = laptop(n);
    assert.ok(Math.abs(tileWidth / tileHeight - 16 / 9) < 0.02, `16:9 at ${n}`);
    assert.ok(
      cols * tileWidth + (cols - 1) * 10 <= 1248 && rows * tileHeight + (rows - 1) * 10 <= 644,
      `fits at ${n}`,
    );
    assert.ok(cols * rows >= n && (cols - 1) * rows < n, `no empty column at ${n}`);
  }
  // A phone held upright: portrait tiles, two columns from three people on.
  const phone = (n) => balancedGrid(n, 348, 600, 6);
  assert.equal(phone(2).cols, 1);
  assert.deepEqual([phone(4).cols, phone(4).rows], [2, 2]);
  assert.ok(phone(4).tileHeight > phone(4).tileWidth);
  assert.deepEqual(balancedGrid(0, 100, 100, 6).tileWidth >= 0, true);
});
