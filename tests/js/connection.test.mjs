// One connection per RTCPeerConnection (public/connection/connection.js) and the verification guard
// built into it (public/verify/guard.js), under Node with a fake RTCPeerConnection: the guard is
// required and runs before every remote description, a mismatch holds before anything
// flows, candidates wait for the description, the one glare rule, ICE restarts only when
// the role asks for recovery, and a closed connection is silent.
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';

import { callMessages } from '../../public/connection/channels.js';
import { Connection, isPolite } from '../../public/connection/connection.js';
import { Guard } from '../../public/verify/guard.js';
import { Timers } from '../../public/connection/timers.js';

const THEIRS = 'AA:'.repeat(31) + 'AA';
const VERIFIED_BOB = 'BB:'.repeat(31) + 'BB';
const MINE = 'CC:'.repeat(31) + 'CC';
/** @param {string} fingerprint */
const sdp = (fingerprint) => `v=0\r\na=fingerprint:sha-256 ${fingerprint}\r\n`;

class FakeChannel extends EventTarget {
  /** @param {string} label */
  constructor(label) {
    super();
    this.label = label;
    this.readyState = 'connecting';
    /** @type {string[]} */
    this.sent = [];
    /** @type {any} */ this.onopen = null;
    /** @type {any} */ this.onclose = null;
    /** @type {any} */ this.onmessage = null;
  }

  /** @param {string} text */
  send(text) {
    this.sent.push(text);
  }

  open() {
    this.readyState = 'open';
    this.onopen?.();
  }

  close() {
    this.readyState = 'closed';
  }
}

class FakeSender {
  /** @param {string | null} track */
  constructor(track) {
    this.track = track;
  }

  /** @param {string | null} track */
  async replaceTrack(track) {
    this.track = track;
  }
}

/** What the code under test does to its RTCPeerConnection, in order. */
class FakePeerConnection extends EventTarget {
  constructor() {
    super();
    /** @type {string[]} */
    this.log = [];
    this.signalingState = 'stable';
    this.connectionState = 'new';
    /** @type {{type: string, sdp: string} | null} */
    this.localDescription = null;
    /** @type {FakeSender[]} */
    this.senders = [new FakeSender('camera')];
    /** @type {FakeChannel[]} */
    this.created = [];
    this.sctp = null;
    /** @type {any} */ this.onicecandidate = null;
    /** @type {any} */ this.ontrack = null;
    /** @type {any} */ this.onconnectionstatechange = null;
    /** @type {any} */ this.ondatachannel = null;
    this.offers = 0;
  }

  /** @param {string} label */
  createDataChannel(label) {
    const channel = new FakeChannel(label);
    this.created.push(channel);
    return channel;
  }

  /** @param {{iceRestart?: boolean}} [options] */
  async createOffer(options = {}) {
    this.offers += 1;
    this.log.push(options.iceRestart ? 'createOffer(iceRestart)' : 'createOffer');
    return { type: 'offer', sdp: sdp(MINE) };
  }

  async createAnswer() {
    this.log.push('createAnswer');
    return { type: 'answer', sdp: sdp(MINE) };
  }

  /** @param {{type: string, sdp?: string}} description */
  async setLocalDescription(description) {
    this.log.push(`setLocal ${description.type}`);
    if (description.type === 'offer') this.signalingState = 'have-local-offer';
    else if (description.type === 'rollback') this.signalingState = 'stable';
    else this.signalingState = 'stable';
    if (description.type !== 'rollback')
      this.localDescription = { type: description.type, sdp: description.sdp || '' };
  }

  /** @param {{type: string, sdp: string}} description */
  async setRemoteDescription(description) {
    this.log.push(`setRemote ${description.type}`);
    this.signalingState = description.type === 'offer' ? 'have-remote-offer' : 'stable';
  }

  /** @param {unknown} candidate */
  async addIceCandidate(candidate) {
    this.log.push(`candidate ${JSON.stringify(candidate ?? null)}`);
  }

  getSenders() {
    return this.senders;
  }

  close() {
    this.log.push('close');
  }

  /** @param {RTCPeerConnectionState} state */
  become(state) {
    this.connectionState = state;
    this.onconnectionstatechange?.();
  }
}

/** @param {{name?: string, verified?: string}} [o] a contact book with at most one contact */
function guardWith({ name = 'Bob', verified = '' } = {}) {
  const contact = verified ? { name, fingerprint: verified, verifiedAt: 1 } : null;
  /** @type {Map<string, string>} */
  const seen = new Map();
  const book = {
    contactFor: (/** @type {string} */ fp) => (contact && contact.fingerprint === fp ? contact : null),
    contactsNamed: (/** @type {string} */ n) => (contact && contact.name === n ? [contact] : []),
    seenFingerprint: (/** @type {string} */ id) => seen.get(id),
    noteSeen: (/** @type {string} */ id, /** @type {string} */ fp) => void seen.set(id, fp),
  };
  return new Guard(/** @type {any} */ (book), () => MINE);
}

/** @param {Partial<import('../../public/connection/connection.js').ConnectionOptions>} [o] */
function connection(o = {}) {
  /** @type {{type: string, data: any}[]} */
  const signals = [];
  const pc = new FakePeerConnection();
  const made = new Connection({
    owner: { peerId: 'bob', peerName: 'Bob' },
    guard: guardWith(),
    configuration: {},
    types: callMessages(),
    polite: false,
    signal: (type, data) => signals.push({ type, data }),
    peerConnection: () => /** @type {any} */ (pc),
    ...o,
  });
  return { connection: made, pc, signals };
}

test('a connection cannot be made without the verification guard', () => {
  assert.throws(() => connection({ guard: /** @type {any} */ (undefined) }), /verification guard/);
});

test('the guard sees every remote description before it is applied', async () => {
  const guard = guardWith();
  /** @type {string[]} */
  const order = [];
  const { connection: c, pc } = connection({ guard });
  const remote = guard.remote.bind(guard);
  guard.remote = async (connection, text) => {
    order.push(`guard ${pc.log.length}`);
    await remote(connection, text);
  };
  await c.receiveOffer(sdp(THEIRS));
  assert.deepEqual(order, ['guard 0']);
  assert.deepEqual(pc.log.slice(0, 3), ['setRemote offer', 'createAnswer', 'setLocal answer']);
  assert.equal(c.check?.state, 'unverified');
  assert.equal(c.held, false);
});

test('a device that is not the verified one is held before its description is applied', async () => {
  const { connection: c, pc } = connection({ guard: guardWith({ verified: VERIFIED_BOB }) });
  /** @type {boolean[]} */
  const heldWhenApplied = [];
  const setRemote = pc.setRemoteDescription.bind(pc);
  pc.setRemoteDescription = async (description) => {
    heldWhenApplied.push(c.held && pc.senders[0].track === null);
    await setRemote(description);
  };
  await c.receiveOffer(sdp(THEIRS));
  assert.deepEqual(heldWhenApplied, [true]);
  assert.equal(c.check?.state, 'mismatch');
  assert.equal(c.check?.expected[0].name, 'Bob');
  // Nothing of ours goes: no chat, no new track (kept for later), only what crosses a hold.
  pc.created[0].open();
  assert.equal(c.send('chat', 'hello'), false);
  await c.sendTrack(/** @type {any} */ (pc.senders[0]), 'screen');
  assert.equal(pc.senders[0].track, null);
  assert.equal(c.send('disconnect', { reason: 'hangup' }), true);
  // The user lets it through: the intended track goes, and the role hears it.
  let released = 0;
  c.on('released', () => (released += 1));
  await c.release();
  assert.equal(c.held, false);
  assert.equal(c.check?.released, true);
  assert.equal(pc.senders[0].track, 'screen');
  assert.equal(released, 1);
  assert.equal(c.send('chat', 'hello'), true);
});

test('the verified device is not held, and a device seen before under that id is', async () => {
  const guard = guardWith({ verified: VERIFIED_BOB });
  const first = connection({ guard });
  await first.connection.receiveOffer(sdp(VERIFIED_BOB));
  assert.equal(first.connection.check?.state, 'verified');
  assert.equal(first.connection.held, false);
  // Same id, another device, another name: still not the one verified for this id.
  const second = connection({ guard, owner: { peerId: 'bob', peerName: 'Robert' } });
  await second.connection.receiveOffer(sdp(THEIRS));
  assert.equal(second.connection.check?.state, 'mismatch');
  assert.equal(second.connection.held, true);
});

test('candidates wait for the remote description, in order, bounded', async () => {
  const { connection: c, pc } = connection();
  await c.addCandidate({ candidate: 'one' });
  await c.addCandidate(null);
  for (let i = 0; i < 300; i += 1) await c.addCandidate({ candidate: `x${i}` });
  assert.equal(pc.log.length, 0);
  assert.equal(c.pendingCandidates.length, 256);
  await c.receiveOffer(sdp(THEIRS));
  assert.deepEqual(pc.log.slice(0, 3), [
    'setRemote offer',
    'candidate {"candidate":"one"}',
    'candidate null',
  ]);
  assert.equal(pc.log.filter((line) => line.startsWith('candidate')).length, 256);
  await c.addCandidate({ candidate: 'late' });
  assert.equal(pc.log.at(-1), 'candidate {"candidate":"late"}');
});

test('glare: the impolite side ignores their offer, the polite side takes it', async () => {
  const impolite = connection({ polite: false });
  await impolite.connection.offer();
  assert.equal(await impolite.connection.receiveOffer(sdp(THEIRS)), false);
  assert.ok(!impolite.pc.log.includes('setRemote offer'));
  const polite = connection({ polite: true });
  await polite.connection.offer();
  assert.equal(await polite.connection.receiveOffer(sdp(THEIRS)), true);
  assert.deepEqual(
    polite.signals.map((s) => s.type),
    ['offer', 'accept'],
  );
  // The rule both roles use: the smaller id is polite.
  assert.equal(isPolite('a1', 'b2'), true);
  assert.equal(isPolite('b2', 'a1'), false);
});

test('a stale answer is ignored', async () => {
  const { connection: c, pc } = connection();
  assert.equal(await c.receiveAnswer(sdp(THEIRS)), false);
  assert.equal(pc.log.length, 0);
  await c.offer();
  assert.equal(await c.receiveAnswer(sdp(THEIRS)), true);
  assert.equal(pc.log.at(-1), 'setRemote answer');
});

test('a closed connection signals and emits nothing more', async () => {
  const { connection: c, pc, signals } = connection();
  /** @type {string[]} */
  const heard = [];
  for (const type of ['connection', 'message', 'service', 'track']) c.on(type, () => heard.push(type));
  const offering = c.offer(); // closed while the offer is being made
  c.close();
  await offering;
  pc.onicecandidate?.({ candidate: { toJSON: () => ({ candidate: 'late' }) } });
  pc.become('connected');
  pc.ontrack?.({ track: {} });
  pc.created[0].open();
  assert.deepEqual(signals, []);
  assert.deepEqual(heard, []);
  assert.equal(c.send('chat', 'hi'), false);
  await c.addCandidate({ candidate: 'x' });
  assert.ok(!pc.log.some((line) => line.startsWith('candidate')));
});

test('ICE restarts after a loss only where the role asks for recovery', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const call = connection({ recovery: { afterMs: 2500, retryMs: 8000 } });
    const data = connection();
    for (const { pc } of [call, data]) pc.become('disconnected');
    mock.timers.tick(2499);
    assert.equal(call.pc.offers, 0);
    mock.timers.tick(1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(call.pc.log.slice(0, 2), ['createOffer(iceRestart)', 'setLocal offer']);
    assert.equal(call.signals[0].type, 'offer');
    assert.equal(data.pc.offers, 0);
    // Connected again: no more restarts are scheduled.
    call.pc.become('connected');
    mock.timers.tick(60000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(call.pc.offers, 1);
    call.connection.close();
    data.connection.close();
  } finally {
    mock.timers.reset();
  }
});

test('named timers: schedule replaces, start keeps a running one, clearAll stops every one', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    /** @type {string[]} */
    const fired = [];
    const timers = new Timers();
    timers.schedule('ring', () => fired.push('ring 1'), 100);
    timers.schedule('ring', () => fired.push('ring 2'), 200); // replaces the first
    timers.start('giveUp', () => fired.push('give up 1'), 300);
    timers.start('giveUp', () => fired.push('give up 2'), 50); // one is running: kept
    mock.timers.tick(250);
    assert.deepEqual(fired, ['ring 2']);
    assert.equal(timers.running.has('ring'), false); // done, so gone
    timers.schedule('idle', () => fired.push('idle'), 100);
    timers.clearAll();
    mock.timers.tick(1000);
    assert.deepEqual(fired, ['ring 2']);
    assert.equal(timers.running.size, 0);
  } finally {
    mock.timers.reset();
  }
});
