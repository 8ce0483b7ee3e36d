// The call controller's consent rule (public/calls.js, issue 18 finding 22): a `call`
// message the person never agreed to, and an offer "from a member" of it, must never
// answer with their camera. Runs under Node with no WebRTC at all: any attempt to build a
// peer connection or to answer would throw or show up in what was sent.
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';

// An invitation rings on a timer (35 s): faked, or the test process waits for it to fire.
mock.timers.enable({ apis: ['setTimeout'] });
globalThis.addEventListener ??= () => {}; // the controller listens for `online` on window
/** Every peer connection the page tries to make: none may be made here. */
const built = [];
globalThis.RTCPeerConnection = class {
  constructor() {
    built.push(this);
    throw new Error('no peer connection may be made for a call nobody accepted');
  }
  static async generateCertificate() {
    return { expires: Date.now() + 86_400_000 * 30, getFingerprints: () => [] };
  }
};
console.warn = () => {}; // identity.js says it has no IndexedDB here

const { CallController } = await import('../../public/calls.js');
const { Emitter } = await import('../../public/events.js');

function controller() {
  /** @type {{type: string, data: any}[]} */
  const sent = [];
  const signalling = { id: 'me', config: { ringTimeoutMs: 30000 }, send: (type, data) => sent.push({ type, data }) };
  const media = Object.assign(new Emitter(), { stream: null, audioTrack: null, videoTrack: null });
  const people = new Map([['mallory', { id: 'mallory', name: 'Mallory', kind: 'browser' }]]);
  const calls = new CallController(/** @type {any} */ (signalling), /** @type {any} */ (media), people);
  /** @type {string[]} */
  const events = [];
  for (const type of ['call', 'group', 'waiting', 'invited']) calls.on(type, () => events.push(type));
  return { calls, sent, events };
}

test('a call made around an idle person is not adopted, and its offers are not answered', () => {
  const { calls, sent, events } = controller();
  calls.handle('call', { id: 'forced', members: ['mallory', 'me'] });
  assert.equal(calls.group, null);
  calls.handle('offer', { source: 'mallory', target: 'me', sdp: 'v=0', type: 'offer', call: 'forced' });
  assert.deepEqual(sent, []); // no accept, no ringing: nothing at all
  assert.equal(built.length, 0);
  assert.equal(calls.active, false);
  assert.deepEqual(events, []);
  // The same call again with more "members": still not ours.
  calls.handle('call', { id: 'forced', members: ['mallory', 'me', 'mallory2'] });
  assert.equal(calls.group, null);
});

test('an invitation withdrawn by its inviter stops ringing with words that say so', () => {
  const { calls } = controller();
  /** @type {string[]} */
  const notices = [];
  calls.on('invitation-over', ({ notice }) => notices.push(notice));
  calls.handle('invite', { source: 'mallory', target: 'me', call: 'c1', members: ['mallory', 'x'] });
  assert.equal(calls.invitation?.call, 'c1');
  // The inviter is named once (issue 19, 14); someone not listed here is "Someone".
  assert.equal(calls.invitation?.text, 'Mallory invites you to a call with Someone');
  assert.equal(calls.invitation?.others, 'Someone');
  calls.handle('hangup', { source: 'mallory', target: 'me', call: 'c1', reason: 'cancelled' });
  assert.equal(calls.invitation, null);
  assert.deepEqual(notices, ['Mallory cancelled the invitation']);
});

test('an invitation from someone alone in their call names them once', () => {
  const { calls } = controller();
  calls.handle('invite', { source: 'mallory', target: 'me', call: 'c2', members: ['mallory'] });
  assert.equal(calls.invitation?.text, 'Mallory invites you to a call');
  assert.equal(calls.invitation?.others, '');
});
