// The router of public/core/protocol.js: which role a frame or a server error goes to.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DATA_LINK, errorRoles, relayRole } from '../../public/core/protocol.js';

test('a data link relay goes to the data links, a space move to spaces, the rest to calls', () => {
  assert.equal(relayRole('offer', { link: DATA_LINK }), 'data');
  assert.equal(relayRole('hangup', { link: DATA_LINK }), 'data');
  assert.equal(relayRole('space-move', {}), 'space');
  for (const type of ['offer', 'accept', 'icecandidate', 'hangup', 'ringing', 'call', 'invite']) {
    assert.equal(relayRole(type, {}), 'call', type);
  }
});

test('errors are asked of the roles their refused message concerns', () => {
  assert.deepEqual(errorRoles({ ref: 'identify' }), ['space', 'name']);
  assert.deepEqual(errorRoles({ ref: 'space-move' }), ['space']);
  for (const ref of ['invite', 'join', 'leave-call']) assert.deepEqual(errorRoles({ ref }), ['call']);
  // A refused relay names no link: the data links know what they are opening, calls hear it too.
  for (const ref of ['offer', 'accept', 'icecandidate', 'hangup', undefined]) {
    assert.deepEqual(errorRoles({ ref }), ['data', 'call']);
  }
});
