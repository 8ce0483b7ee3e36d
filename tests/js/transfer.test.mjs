// The file-transfer protocol with fake channels (node --test): offers, accept and
// decline, flow control, cancel from either side, resume after a dropped channel, and
// bad input from a broken or hostile peer.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';

import {
  encode,
  FileReceiver,
  FileSender,
  formatBytes,
  formatEta,
  MemorySink,
  parseMessage,
  RECEIVER,
  SENDER,
  transferIdOf,
  transferLabel,
} from '../../public/data/transfer.js';

const typeOf = (text) => {
  try {
    return JSON.parse(text).type;
  } catch {
    return 'unreadable';
  }
};
const tick = () => new Promise((resolve) => setImmediate(resolve));
async function settle(times = 50) {
  for (let i = 0; i < times; i++) await tick();
}

/** One end of a fake data channel pair: messages arrive on the other end a tick later. */
class FakeEnd extends EventTarget {
  constructor(label) {
    super();
    this.label = label;
    this.readyState = 'connecting';
    this.bufferedAmount = 0;
    this.bufferedAmountLowThreshold = 0;
    this.binaryType = 'blob';
    this.peer = null;
    this.sent = []; // [kind, size] of everything sent, for assertions
    this.maxBuffered = 0;
  }
  send(data) {
    if (this.readyState !== 'open') throw new Error('InvalidStateError: not open');
    const size = typeof data === 'string' ? data.length : data.byteLength;
    // The browser copies what it is given at once.
    const copy =
      typeof data === 'string'
        ? data
        : new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, size).slice().buffer;
    this.sent.push(typeof data === 'string' ? typeOf(data) : size);
    this.bufferedAmount += size;
    this.maxBuffered = Math.max(this.maxBuffered, this.bufferedAmount);
    setImmediate(() => {
      if (this.readyState !== 'open') return;
      const before = this.bufferedAmount;
      this.bufferedAmount -= size;
      if (
        before > this.bufferedAmountLowThreshold &&
        this.bufferedAmount <= this.bufferedAmountLowThreshold
      ) {
        this.dispatchEvent(new Event('bufferedamountlow'));
      }
      const event = new Event('message');
      event.data = copy;
      this.peer.dispatchEvent(event);
    });
  }
  close() {
    for (const end of [this, this.peer]) {
      if (end.readyState === 'closed') continue;
      end.readyState = 'closed';
      setImmediate(() => end.dispatchEvent(new Event('close')));
    }
  }
  open() {
    for (const end of [this, this.peer]) {
      end.readyState = 'open';
      end.dispatchEvent(new Event('open'));
    }
  }
}

function channelPair(label) {
  const a = new FakeEnd(label);
  const b = new FakeEnd(label);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

const bufferSource = (bytes) => ({ read: async (offset, length) => bytes.subarray(offset, offset + length) });
const hex = (bytes) => createHash('sha256').update(bytes).digest('hex');

/**
 * A sender and, once its offer arrives, a receiver (the way the app's files module
 * wires them): returns both and the channel ends of the current attempt.
 */
function connect(bytes, options = {}) {
  const sender = new FileSender(
    { name: 'photo.jpg', size: bytes.length, type: 'image/jpeg' },
    options.source ?? bufferSource(bytes),
    {
      chunkSize: 1024,
      readSize: 4096,
      window: 16 * 1024,
      highWater: 8 * 1024,
      lowWater: 2 * 1024,
      ...options.sender,
    },
  );
  const world = { sender, receiver: null, ends: null, offers: [] };
  world.open = () => {
    const [a, b] = channelPair(sender.nextLabel());
    world.ends = [a, b];
    sender.attach(a);
    // The receiving app reads the first message of a new transfer channel: the offer.
    b.addEventListener(
      'message',
      (event) => {
        const id = transferIdOf(b.label);
        const offer = FileReceiver.offerOf(event.data, id);
        world.offers.push(offer);
        if (!offer) return b.close();
        if (!world.receiver) {
          world.receiver = new FileReceiver(offer, { ackEvery: 2048, ...options.receiver });
          world.receiver.attach(b);
        } else {
          world.receiver.attach(b, offer);
        }
      },
      { once: true },
    );
    a.open();
  };
  world.open();
  return world;
}

test('the tables: every target is a state, finished states have no way out', () => {
  for (const table of [SENDER, RECEIVER]) {
    for (const [from, events] of Object.entries(table)) {
      for (const to of Object.values(events)) assert.ok(to in table, `${from} -> ${to}`);
    }
    for (const end of ['done', 'declined', 'cancelled', 'failed']) assert.deepEqual(table[end], {});
  }
});

test('labels carry the transfer id and the attempt', () => {
  assert.equal(transferLabel('abc', 2), 'file:abc:2');
  assert.equal(transferIdOf('file:abc:2'), 'abc');
  for (const label of ['chat', 'file:', 'file:abc', 'file:a b:1', 'file:abc:1:2', 'file:abc:x'])
    assert.equal(transferIdOf(label), null, label);
});

test('a file is offered, accepted and arrives byte-identical, with progress on both sides', async () => {
  const bytes = new Uint8Array(randomBytes(100_000));
  const world = connect(bytes);
  await settle();
  const { sender, receiver } = world;
  assert.deepEqual(
    { name: receiver.offer.name, size: receiver.offer.size, type: receiver.offer.type },
    { name: 'photo.jpg', size: 100_000, type: 'image/jpeg' },
  );
  assert.equal(sender.state, 'offering');
  assert.equal(receiver.state, 'offered');
  const sink = new MemorySink();
  const senderProgress = [];
  const receiverProgress = [];
  sender.on('progress', (p) => senderProgress.push(p.bytes));
  receiver.on('progress', (p) => receiverProgress.push(p.bytes));
  receiver.accept(sink);
  await settle(400);
  assert.equal(receiver.state, 'done', receiver.reason);
  assert.equal(sender.state, 'done', sender.reason);
  assert.equal(hex(sink.bytes()), hex(bytes));
  assert.equal(receiverProgress.at(-1), 100_000);
  assert.ok(senderProgress.length > 3 && senderProgress.at(-1) === 100_000, String(senderProgress));
  // Flow control: the buffer never went far past the high-water mark, chunks never past the chunk size.
  const [a] = world.ends;
  assert.ok(a.maxBuffered <= 8 * 1024 + 1024, `buffered ${a.maxBuffered}`);
  assert.ok(a.sent.filter((s) => typeof s === 'number').every((n) => n <= 1024));
  assert.ok(a.sent.includes('file-end'));
});

test('an empty file and a file of exactly one chunk', async () => {
  for (const size of [0, 1024]) {
    const bytes = new Uint8Array(randomBytes(size));
    const world = connect(bytes);
    await settle();
    const sink = new MemorySink();
    world.receiver.accept(sink);
    await settle(100);
    assert.equal(world.receiver.state, 'done', `${size}: ${world.receiver.reason}`);
    assert.equal(hex(sink.bytes()), hex(bytes));
  }
});

test(
  'the sender waits for acknowledgements: ' + 'never more than the window beyond what was written',
  async () => {
    const bytes = new Uint8Array(randomBytes(64 * 1024));
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    const slow = new MemorySink();
    const write = slow.write.bind(slow);
    slow.write = async (chunk) => {
      await gate;
      write(chunk);
    };
    const world = connect(bytes);
    await settle();
    world.receiver.accept(slow);
    await settle(200);
    assert.equal(world.sender.offset, 16 * 1024, 'stopped at the window');
    release();
    await settle(600);
    assert.equal(world.receiver.state, 'done', world.receiver.reason);
    assert.equal(hex(slow.bytes()), hex(bytes));
  },
);

test('decline: the sender hears it, nothing is sent', async () => {
  const world = connect(new Uint8Array(5000));
  await settle();
  world.receiver.decline();
  await settle();
  assert.equal(world.sender.state, 'declined');
  assert.equal(world.receiver.state, 'declined');
  assert.ok(!world.ends[0].sent.some((s) => typeof s === 'number'));
});

test('the receiver cancels midway: the sender stops, the partial file is discarded', async () => {
  const bytes = new Uint8Array(randomBytes(200_000));
  const world = connect(bytes, { source: slowSource(bytes) });
  await settle();
  const sink = new MemorySink();
  world.receiver.accept(sink);
  await settle(30);
  assert.equal(world.receiver.state, 'receiving');
  world.receiver.cancel('Not now.');
  await settle(60);
  assert.equal(world.sender.state, 'cancelled');
  assert.match(world.sender.reason, /cancelled: Not now/);
  assert.ok(sink.discarded);
  assert.ok(world.sender.offset < bytes.length);
});

test('the sender cancels midway: the receiver stops and discards', async () => {
  const bytes = new Uint8Array(randomBytes(200_000));
  const world = connect(bytes, { source: slowSource(bytes) });
  await settle();
  const sink = new MemorySink();
  world.receiver.accept(sink);
  await settle(30);
  world.sender.cancel();
  await settle(60);
  assert.equal(world.receiver.state, 'cancelled');
  assert.match(world.receiver.reason, /other side cancelled/);
  assert.ok(sink.discarded);
});

test('resume after the channel drops: continues from what was written, each byte hashed once', async () => {
  const bytes = new Uint8Array(randomBytes(150_000));
  const world = connect(bytes, { source: slowSource(bytes) });
  await settle();
  const sink = new MemorySink();
  world.receiver.accept(sink);
  await settle(40);
  const before = world.receiver.written;
  assert.ok(before > 0 && before < bytes.length, `written ${before}`);
  world.ends[0].close(); // the network drops
  await settle(20);
  assert.equal(world.sender.state, 'interrupted');
  assert.equal(world.receiver.state, 'interrupted');
  world.open(); // the link is back: the sender offers again on a new channel
  await settle(800);
  assert.equal(world.ends[0].label, world.sender.offer.id ? `file:${world.sender.id}:2` : '');
  assert.equal(world.receiver.state, 'done', world.receiver.reason);
  assert.equal(world.sender.state, 'done', world.sender.reason);
  assert.equal(hex(sink.bytes()), hex(bytes));
  // The second attempt started where the receiver had written up to, not at zero.
  const resentBytes = world.ends[0].sent.filter((s) => typeof s === 'number').reduce((n, s) => n + s, 0);
  assert.ok(resentBytes <= bytes.length - before, `resent ${resentBytes}`);
});

test('a drop while the offer is still shown: accepting later resumes on the next channel', async () => {
  const bytes = new Uint8Array(randomBytes(10_000));
  const world = connect(bytes);
  await settle();
  world.ends[0].close();
  await settle(10);
  const sink = new MemorySink();
  world.receiver.accept(sink);
  assert.equal(world.receiver.state, 'interrupted');
  world.open();
  await settle(200);
  assert.equal(world.receiver.state, 'done', world.receiver.reason);
  assert.equal(hex(sink.bytes()), hex(bytes));
});

test('a drop after the last byte: the re-offer is answered with done', async () => {
  const bytes = new Uint8Array(randomBytes(3000));
  const world = connect(bytes);
  await settle();
  const sink = new MemorySink();
  world.receiver.accept(sink);
  // The link drops while the receiver checks the file, so file-done never reaches the sender.
  world.receiver.on('state', ({ to }) => to === 'verifying' && world.ends[1].close());
  await settle(200);
  assert.equal(world.receiver.state, 'done');
  assert.equal(world.sender.state, 'interrupted');
  world.open();
  await settle(100);
  assert.equal(world.sender.state, 'done', world.sender.reason);
});

/** Bytes from the sender's side sent raw on its channel, as a broken or hostile peer would. */
async function hostile(send, options = {}) {
  const bytes = new Uint8Array(randomBytes(options.size ?? 4096));
  // the real sender never sends data
  const world = connect(bytes, { source: { read: () => new Promise(() => {}) } });
  await settle();
  const sink = new MemorySink();
  world.receiver.accept(sink);
  await settle();
  const [a] = world.ends;
  send(a, world.sender.id, bytes);
  await settle(60);
  return { world, sink };
}

test(
  'bad input: a chunk larger than announced fails the transfer, ' + 'nothing saved, the other side told',
  async () => {
    const { world, sink } = await hostile((a) => a.send(new Uint8Array(1025)));
    assert.equal(world.receiver.state, 'failed');
    assert.match(world.receiver.reason, /piece of 1025 bytes; it announced at most 1024/);
    assert.ok(sink.discarded);
    assert.equal(world.sender.state, 'failed');
    assert.match(world.sender.reason, /reported a problem/);
  },
);

test('bad input: more bytes than the size', async () => {
  const { world, sink } = await hostile((a) => {
    for (let i = 0; i < 5; i++) a.send(new Uint8Array(1024));
  });
  assert.equal(world.receiver.state, 'failed');
  assert.match(world.receiver.reason, /more than the 4096 bytes/);
  assert.ok(sink.discarded);
});

test('bad input: a wrong hash is an error and nothing is saved as good', async () => {
  const { world, sink } = await hostile((a, id, bytes) => {
    for (let at = 0; at < bytes.length; at += 1024) a.send(bytes.subarray(at, at + 1024));
    a.send(encode('file-end', { id, sha256: '0'.repeat(64) }));
  });
  assert.equal(world.receiver.state, 'failed');
  assert.match(world.receiver.reason, /damaged/);
  assert.ok(sink.discarded);
});

test('bad input: the file ends early', async () => {
  const { world } = await hostile((a, id, bytes) => {
    a.send(bytes.subarray(0, 1024));
    a.send(encode('file-end', { id, sha256: hex(bytes) }));
  });
  assert.equal(world.receiver.state, 'failed');
  assert.match(world.receiver.reason, /ended after 1024 of 4096 bytes/);
});

test('bad input: malformed messages fail that transfer only, with a sentence', async () => {
  for (const raw of [
    'not json',
    '{"type":"file-end"}',
    encode('file-end', { id: 'other', sha256: '0'.repeat(64) }),
    encode('file-ack', { id: 'x', offset: -1 }),
    'x'.repeat(5000),
  ]) {
    const { world } = await hostile((a, id) => a.send(raw.replace('"x"', JSON.stringify(id))));
    assert.equal(world.receiver.state, 'failed', raw.slice(0, 40));
    assert.equal(world.receiver.reason, 'The other device sent a message this app cannot read.');
  }
});

test('bad input: a message at the wrong time', async () => {
  const { world } = await hostile((a, id) =>
    a.send(encode('file-offer', { id, name: 'other.bin', size: 1, type: '', chunkSize: 1024 })),
  );
  assert.equal(world.receiver.state, 'failed');
  assert.match(world.receiver.reason, /file-offer at the wrong time/);
});

test('bad offers are refused before anyone sees them', () => {
  const good = { id: 'abc', name: 'a.txt', size: 10, type: 'text/plain', chunkSize: 1024 };
  assert.deepEqual(FileReceiver.offerOf(encode('file-offer', good), 'abc'), good);
  for (const bad of [
    { ...good, id: 'other' },
    { ...good, name: '' },
    { ...good, name: 'x'.repeat(256) },
    { ...good, size: -1 },
    { ...good, size: 1.5 },
    { ...good, chunkSize: 0 },
    { ...good, chunkSize: 1024 * 1024 },
    { ...good, sha256: 'nothex' },
    { ...good, type: 5 },
  ]) {
    assert.equal(FileReceiver.offerOf(encode('file-offer', bad), 'abc'), null, JSON.stringify(bad));
  }
  assert.equal(FileReceiver.offerOf(encode('file-accept', { id: 'abc', offset: 0 }), 'abc'), null);
  assert.ok(parseMessage('[]', 'abc').error);
});

test('bad input from the receiver: resume past what was sent, ack beyond it', async () => {
  const world = connect(new Uint8Array(5000));
  await settle();
  world.ends[1].send(encode('file-accept', { id: world.sender.id, offset: 4000 }));
  await settle();
  assert.equal(world.sender.state, 'failed');
  assert.match(world.sender.reason, /resume past the data sent/);
});

test('a write that fails on the receiver fails the transfer with a sentence', async () => {
  const world = connect(new Uint8Array(randomBytes(5000)));
  await settle();
  world.receiver.accept({
    write: () => Promise.reject(new Error('The disk is full.')),
    digest: () => '',
    discard: () => {},
  });
  await settle(100);
  assert.equal(world.receiver.state, 'failed');
  assert.equal(world.receiver.reason, 'The file could not be written on this device: The disk is full.');
  assert.equal(world.sender.state, 'failed');
});

test('formatting sizes and time left', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1500), '1.5 KB');
  assert.equal(formatBytes(200_000_000), '200 MB');
  assert.equal(formatEta(null), '');
  assert.equal(formatEta(12.4), '12 s left');
  assert.equal(formatEta(600), '10 min left');
});

/** A source that takes a few ticks per read, so a test can act midway. */
function slowSource(bytes) {
  return {
    read: async (offset, length) => {
      await settle(3);
      return bytes.subarray(offset, offset + length);
    },
  };
}

for (const [when, ticks] of [
  ['midway', 8],
  ['after the end', 40],
])
  test(
    `resume ${when} from an offset inside a block already read: ` + 'the final hash covers each byte once',
    async () => {
      const options = { ticks };
      const bytes = new Uint8Array(randomBytes(20_000));
      const sender = new FileSender({ name: 'a.bin', size: bytes.length }, slowSource(bytes), {
        chunkSize: 1024,
        readSize: 4096,
        window: 1 << 20,
      });
      const attempt = (offset) => {
        const [a, b] = channelPair(sender.nextLabel());
        const got = { bytes: 0, end: null };
        b.addEventListener('message', (event) => {
          if (typeof event.data !== 'string') got.bytes += event.data.byteLength;
          else if (JSON.parse(event.data).type === 'file-offer')
            b.send(encode('file-accept', { id: sender.id, offset }));
          else if (JSON.parse(event.data).type === 'file-end') got.end = JSON.parse(event.data).data.sha256;
        });
        sender.attach(a);
        a.open();
        return { a, got };
      };
      const first = attempt(0);
      await settle(options.ticks);
      assert.ok(sender.hashed >= 4096, `hashed ${sender.hashed}`);
      first.a.close();
      await settle(5);
      const second = attempt(3 * 1024); // the receiver had written 3 KiB: mid-block
      await settle(400);
      assert.equal(second.got.bytes, bytes.length - 3 * 1024);
      assert.equal(second.got.end, hex(bytes));
    },
  );

test(
  'a sink that takes the buffer (a worker transfer detaches it): ' + 'progress and acks still count it',
  async () => {
    const bytes = new Uint8Array(randomBytes(40_000));
    const world = connect(bytes);
    await settle();
    const sink = new MemorySink();
    const write = sink.write.bind(sink);
    sink.write = (chunk) => {
      write(chunk);
      structuredClone(chunk.buffer, { transfer: [chunk.buffer] }); // as postMessage(..., [buffer]) does
      assert.equal(chunk.length, 0);
    };
    const acks = [];
    world.sender.on('progress', (p) => acks.push(p.bytes));
    world.receiver.accept(sink);
    await settle(400);
    assert.equal(world.receiver.state, 'done', world.receiver.reason);
    assert.equal(world.receiver.written, 40_000);
    assert.ok(
      acks.some((n) => n > 0 && n < 40_000),
      `acks ${acks}`,
    );
    assert.equal(hex(sink.bytes()), hex(bytes));
  },
);

test('chunks that arrive while a write is on its way go to the sink together, in order', async () => {
  const bytes = new Uint8Array(randomBytes(60_000));
  const world = connect(bytes);
  await settle();
  const sink = new MemorySink();
  /** @type {number[]} chunks per call */
  const batches = [];
  let release = () => {};
  sink.writeMany = async (parts) => {
    batches.push(parts.length);
    // The first write is slow (a busy disk): what arrives meanwhile queues behind it.
    if (batches.length === 1) await new Promise((resolve) => (release = resolve));
    for (const part of parts) {
      sink.write(part);
      structuredClone(part.buffer, { transfer: [part.buffer] }); // the worker takes the buffers
    }
  };
  world.receiver.accept(sink);
  await settle(100);
  assert.deepEqual(batches, [1]);
  assert.ok(world.receiver.received > 1024, 'more arrived while the first write waited');
  release();
  await settle(400);
  assert.equal(world.receiver.state, 'done', world.receiver.reason);
  assert.ok(batches.length < Math.ceil(60_000 / 1024), `batches ${batches}`);
  assert.ok(batches[1] > 1, `the second write carried what queued: ${batches}`);
  assert.equal(world.receiver.written, 60_000);
  assert.equal(hex(sink.bytes()), hex(bytes));
});

/** A first transfer that its sender abandons midway (a reload): the receiver's part. */
async function abandonedPart(bytes) {
  const first = connect(bytes, { source: slowSource(bytes) });
  await settle();
  const sink = new MemorySink();
  first.receiver.accept(sink);
  await settle(40);
  first.ends[0].close();
  await settle(20);
  const written = first.receiver.written;
  assert.ok(written > 0 && written < bytes.length, `written ${written}`);
  return { sink, written };
}

test(
  'the same file sent again continues from the part kept, ' + 'checked by its SHA-256, as one file',
  async () => {
    const bytes = new Uint8Array(randomBytes(150_000));
    const { sink, written } = await abandonedPart(bytes);
    const again = connect(bytes); // a new sender (the reloaded page), a new transfer id
    await settle();
    assert.equal(again.receiver.offer.partial, true);
    assert.ok(again.receiver.acceptFrom(sink, written, sink.peek()));
    assert.equal(again.receiver.bytes, written);
    await settle(800);
    assert.equal(again.receiver.state, 'done', again.receiver.reason);
    assert.equal(again.sender.state, 'done', again.sender.reason);
    assert.equal(again.sender.resumedFrom, written);
    assert.equal(again.receiver.continuedFrom, written);
    assert.equal(hex(sink.bytes()), hex(bytes));
    const sent = again.ends[0].sent.filter((s) => typeof s === 'number').reduce((n, s) => n + s, 0);
    assert.equal(sent, bytes.length - written, 'only the rest crossed');
  },
);

test(
  'another file under the same name and size is not continued: ' + 'the sender says so, the part goes',
  async () => {
    const bytes = new Uint8Array(randomBytes(150_000));
    const { sink, written } = await abandonedPart(bytes);
    const other = new Uint8Array(randomBytes(150_000));
    const again = connect(other);
    await settle();
    assert.ok(again.receiver.acceptFrom(sink, written, sink.peek()));
    await settle(200);
    assert.equal(again.sender.state, 'failed');
    assert.match(again.sender.reason, /another file: send it again to start from the beginning/);
    assert.equal(again.receiver.state, 'failed');
    assert.match(again.receiver.reason, /another file/);
    assert.ok(sink.discarded, 'the part was dropped, so the next try starts from zero');
  },
);

test('a part is continued only from a sender that says it can, and never past the end', async () => {
  const bytes = new Uint8Array(randomBytes(20_000));
  const old = connect(bytes);
  await settle();
  delete old.receiver.offer.partial; // as an offer from an app without the extension
  assert.equal(old.receiver.acceptFrom(new MemorySink(), 1000, 'ab'.repeat(32)), false);
  const world = connect(bytes);
  await settle();
  assert.equal(world.receiver.acceptFrom(new MemorySink(), 20_001, 'ab'.repeat(32)), false);
  assert.equal(world.receiver.state, 'offered');
});
