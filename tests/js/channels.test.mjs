// The data-channel message registry and a link's named channels, with fake channels
// (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  callMessages,
  MessageRegistry,
  onMessage,
  PeerChannels,
  SERVICE_CHANNEL,
} from '../../public/connection/channels.js';

class FakeChannel {
  constructor(label, options) {
    this.label = label;
    this.options = options;
    this.readyState = 'connecting';
    this.sent = [];
  }
  send(text) {
    this.sent.push(text);
  }
  close() {
    this.readyState = 'closed';
    this.onclose?.();
  }
  open() {
    this.readyState = 'open';
    this.onopen?.();
  }
  deliver(text) {
    this.onmessage?.({ data: text });
  }
}

class FakePeerConnection {
  constructor() {
    this.created = [];
    this.ondatachannel = null;
  }
  createDataChannel(label, options) {
    const dc = new FakeChannel(label, options);
    this.created.push(dc);
    return dc;
  }
}

test('the default channel is the negotiated chat channel with id 0', () => {
  const pc = new FakePeerConnection();
  new PeerChannels(pc, callMessages());
  assert.equal(pc.created.length, 1);
  assert.equal(pc.created[0].label, 'chat');
  assert.deepEqual(pc.created[0].options, { negotiated: true, id: 0 });
});

test('known messages are checked, unknown or malformed ones ignored', () => {
  const pc = new FakePeerConnection();
  const channels = new PeerChannels(pc, callMessages());
  const got = [];
  channels.on('message', (m) => got.push(m));
  const chat = pc.created[0];
  chat.deliver(JSON.stringify({ type: 'chat', data: 'hello' }));
  chat.deliver(JSON.stringify({ type: 'typing', data: true }));
  chat.deliver(JSON.stringify({ type: 'media', data: { audio: false, video: true } }));
  chat.deliver(JSON.stringify({ type: 'disconnect' }));
  chat.deliver(JSON.stringify({ type: 'chat', data: 42 })); // wrong data
  chat.deliver(JSON.stringify({ type: 'media', data: { audio: 'no' } }));
  chat.deliver(JSON.stringify({ type: 'file-offer', data: {} })); // unknown: a newer peer
  chat.deliver('{not json');
  chat.deliver('x'.repeat(70_000));
  assert.deepEqual(
    got.map((m) => m.type),
    ['chat', 'typing', 'media', 'disconnect'],
  );
  assert.equal(got[0].data, 'hello');
});

test("send uses the type's channel and refuses when it is not open", () => {
  const pc = new FakePeerConnection();
  const channels = new PeerChannels(pc, callMessages());
  assert.equal(channels.send('chat', 'early'), false);
  pc.created[0].open();
  assert.ok(channels.send('chat', 'now'));
  assert.ok(channels.send('disconnect'));
  assert.deepEqual(pc.created[0].sent, ['{"type":"chat","data":"now"}', '{"type":"disconnect"}']);
  assert.throws(() => channels.send('chat', 7), /bad data/);
  assert.throws(() => channels.send('nope', 1), /unknown message type/);
});

test('types on their own channel open it on demand and only count there', () => {
  const types = new MessageRegistry().define('chunk', (d) => typeof d === 'string', { channel: 'file-1' });
  const pc = new FakePeerConnection();
  const channels = new PeerChannels(pc, types);
  const got = [];
  channels.on('message', (m) => got.push(m));
  assert.equal(channels.send('chunk', 'a'), false); // opened, not yet open
  const file = pc.created[1];
  assert.equal(file.label, 'file-1');
  assert.equal(channels.open('file-1'), file); // one channel per name
  file.open();
  assert.ok(channels.send('chunk', 'b'));
  pc.created[0].deliver(JSON.stringify({ type: 'chunk', data: 'wrong channel' }));
  file.deliver(JSON.stringify({ type: 'chunk', data: 'right channel' }));
  assert.deepEqual(got, [{ type: 'chunk', data: 'right channel' }]);
});

test('a channel the other side opens is adopted by label', () => {
  const types = new MessageRegistry().define('note', (d) => typeof d === 'string', { channel: 'notes' });
  const pc = new FakePeerConnection();
  const channels = new PeerChannels(pc, types);
  const got = [];
  channels.on('message', (m) => got.push(m.data));
  const remote = new FakeChannel('notes', {});
  pc.ondatachannel({ channel: remote });
  remote.deliver(JSON.stringify({ type: 'note', data: 'hi' }));
  assert.deepEqual(got, ['hi']);
  assert.equal(channels.open('notes'), remote);
});

test('a type is declared once', () => {
  assert.throws(() => callMessages().define('chat', () => true), /defined twice/);
  // Each role makes its own: a type one of them adds is not spoken by the others.
  const data = callMessages().define('message', (d) => typeof d === 'string');
  assert.ok(data.types.has('message') && !callMessages().types.has('message'));
  assert.equal(SERVICE_CHANNEL, 'chat');
});

test("onMessage hands one type's data to its subscriber, until its signal aborts or it unsubscribes", () => {
  const pc = new FakePeerConnection();
  const channels = new PeerChannels(pc, callMessages());
  const chats = [];
  const typing = [];
  const scope = new AbortController();
  onMessage(channels, 'chat', (text) => chats.push(text), { signal: scope.signal });
  const stopTyping = onMessage(channels, 'typing', (on) => typing.push(on));
  const chat = pc.created[0];
  chat.deliver(JSON.stringify({ type: 'typing', data: true }));
  chat.deliver(JSON.stringify({ type: 'chat', data: 'hi' }));
  scope.abort();
  chat.deliver(JSON.stringify({ type: 'chat', data: 'after the call' }));
  chat.deliver(JSON.stringify({ type: 'typing', data: false }));
  stopTyping();
  chat.deliver(JSON.stringify({ type: 'typing', data: true }));
  assert.deepEqual(chats, ['hi']);
  assert.deepEqual(typing, [true, false]);
});

test(
  'a held connection tells the other side, keeps what it sends, ' +
    'and hands it over if it goes on (issue 19, 5)',
  () => {
    const pc = new FakePeerConnection();
    const channels = new PeerChannels(pc, callMessages());
    const service = pc.created[0];
    channels.held = true; // held before the channel opened: said once it opens
    assert.deepEqual(service.sent, []);
    service.open();
    assert.deepEqual(service.sent, ['{"type":"hold","data":true}']);
    const got = [];
    const kept = [];
    channels.on('message', (m) => got.push(m));
    channels.on('kept', (n) => kept.push(n));
    service.deliver(JSON.stringify({ type: 'chat', data: 'is this Alice?' }));
    service.deliver(JSON.stringify({ type: 'typing', data: true }));
    assert.deepEqual(got, []); // not acted on while held
    assert.deepEqual(kept, [1, 1]); // typing is stale by the time anyone decides: not kept
    assert.equal(channels.send('chat', 'nothing of ours goes'), false);
    assert.ok(channels.send('disconnect', { reason: 'left' })); // the end of the call still does
    channels.held = false;
    assert.deepEqual(service.sent.slice(-1), ['{"type":"hold","data":false}']);
    assert.deepEqual(got, [{ type: 'chat', data: 'is this Alice?' }]);
    // A flood while held keeps a bounded number.
    channels.held = true;
    for (let i = 0; i < 500; i += 1) service.deliver(JSON.stringify({ type: 'chat', data: `${i}` }));
    assert.equal(channels.kept.length, 64);
  },
);

test('a registry of its own that does not speak `hold` can still be held', () => {
  const pc = new FakePeerConnection();
  const channels = new PeerChannels(
    pc,
    new MessageRegistry().define('chat', (d) => typeof d === 'string'),
  );
  pc.created[0].open();
  channels.held = true;
  channels.held = false;
  assert.deepEqual(pc.created[0].sent, []);
});
