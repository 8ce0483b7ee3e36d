// What the call screen's server chip says, and when (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LONG_AFTER_MS, serverChipText, SHOW_AFTER_MS } from '../../public/lobby/serverchip.js';

test('nothing while the server is there, or for a blip', () => {
  assert.equal(serverChipText('online', 60000, true), '');
  assert.equal(serverChipText('connecting', 60000, true), '');
  assert.equal(serverChipText('reconnecting', 0, true), '');
  assert.equal(serverChipText('reconnecting', SHOW_AFTER_MS - 1, true), '');
  assert.equal(serverChipText('offline', SHOW_AFTER_MS - 1, true), '');
});

test('after a moment: reconnecting, and the call goes on', () => {
  assert.equal(
    serverChipText('reconnecting', SHOW_AFTER_MS, true),
    'Reconnecting to the server… Your call continues.',
  );
});

test('a long outage says what waits for the server', () => {
  const text = serverChipText('reconnecting', LONG_AFTER_MS, true);
  assert.match(text, /Your call continues/);
  assert.match(text, /nobody new can join/);
  assert.equal(
    serverChipText('reconnecting', LONG_AFTER_MS - 1, true),
    'Reconnecting to the server… Your call continues.',
  );
});

test('a call not connected yet is not promised to continue', () => {
  const text = serverChipText('reconnecting', SHOW_AFTER_MS, false);
  assert.doesNotMatch(text, /continues/);
  assert.match(text, /can’t connect until/);
});

test('offline says so, with no promise the call goes on', () => {
  const text = serverChipText('offline', SHOW_AFTER_MS, true);
  assert.match(text, /This device is offline/);
  assert.doesNotMatch(text, /continues/);
});
