// The call controller's consent rule (public/calls/calls.js, issue 18 finding 22): a `call`
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

const { CallController } = await import('../../public/calls/calls.js');
const { Emitter } = await import('../../public/core/events.js');
const { Guard } = await import('../../public/verify/guard.js');

function controller() {
  /** @type {{type: string, data: any}[]} */
  const sent = [];
  const signalling = {
    id: 'me',
    config: { ringTimeoutMs: 30000 },
    send: (type, data) => sent.push({ type, data }),
  };
  const media = Object.assign(new Emitter(), { stream: null, audioTrack: null, videoTrack: null });
  const people = new Map([['mallory', { id: 'mallory', name: 'Mallory', kind: 'browser' }]]);
  const book = {
    contactFor: () => null,
    contactsNamed: () => [],
    seenFingerprint: () => null,
    noteSeen: () => {},
  };
  const guard = new Guard(book, () => '');
  const calls = new CallController(
    /** @type {any} */ (signalling),
    /** @type {any} */ (media),
    people,
    guard,
  );
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

test('an invitation, accepted: one call state at a time (public/calls/callstate.js), busy to others', () => {
  const { calls, sent } = controller();
  /** @type {string[]} */
  const notices = [];
  calls.on('notice', (text) => notices.push(text));
  calls.handle('invite', { source: 'mallory', target: 'me', call: 'c1', members: ['mallory'] });
  assert.equal(calls.callState.state, 'invitation');
  const busy = () => sent.filter(({ type, data }) => type === 'reject' && data.reason === 'busy').length;
  calls.handle('invite', { source: 'x', target: 'me', call: 'c2', members: ['x'] });
  assert.equal(busy(), 1); // one invitation rings at a time
  assert.equal(calls.invitation?.call, 'c1');
  calls.accept();
  assert.equal(calls.callState.state, 'joining');
  assert.equal(calls.invitation, null);
  assert.equal(calls.joining, 'c1');
  assert.deepEqual(sent.at(-1), { type: 'join', data: { call: 'c1' } });
  calls.handle('invite', { source: 'x', target: 'me', call: 'c2', members: ['x'] });
  assert.equal(busy(), 2); // nor while we join
  assert.equal(calls.serverError({ code: 'call-full', ref: 'join' }), true);
  assert.equal(calls.callState.state, 'idle');
  assert.equal(calls.joining, null);
  assert.equal(calls.group, null);
  assert.deepEqual(notices, ['This call is full']);
});

test('an unanswered invitation gives up: missed, and the inviter hears why', () => {
  const { calls, sent } = controller();
  /** @type {string[]} */
  const missed = [];
  calls.on('missed', ({ peerId, reason }) => missed.push(`${peerId} ${reason}`));
  calls.handle('invite', { source: 'mallory', target: 'me', call: 'c3', members: ['mallory'] });
  mock.timers.tick(35_000);
  assert.equal(calls.callState.state, 'idle');
  assert.deepEqual(missed, ['mallory timeout']);
  const told = { target: 'mallory', reason: 'timeout', call: 'c3', source: 'me' };
  assert.deepEqual(sent.at(-1), { type: 'reject', data: told });
});
