// One file from one person to another, over one reliable ordered data channel
// (docs/protocol.md §9, "File transfers"). Pure protocol: no DOM, no storage, no UI.
//
// The sender opens a channel labelled `file:<id>:<attempt>` and offers the file on it;
// the receiver's user accepts or declines; the bytes follow as binary messages of at
// most `chunkSize`, flow-controlled by the channel's bufferedAmount and by a window of
// bytes the receiver has not yet acknowledged as written. `file-end` carries the
// SHA-256 of the whole file; the receiver compares it with what it wrote. If the
// channel closes midway (a network blip, a reconnect, a locked phone), the sender opens
// a new channel (next attempt) and offers again with the same id; the receiver answers
// `file-accept` with the bytes it has written, and the transfer continues from there.
//
// Sender states (SENDER table)
//   offering     offer sent (or about to be, once the channel opens); waiting for an answer
//   sending      accepted; bytes flow
//   verifying    every byte and `file-end` sent; waiting for the receiver's `file-done`
//   interrupted  the channel closed midway; `resume` offers again on a new channel
//   done | declined | cancelled | failed   over
//
// Receiver states (RECEIVER table)
//   offered      the offer is shown; our user has not answered
//   receiving    accepted; bytes arrive and are written
//   verifying    `file-end` arrived; the written file is being hashed and compared
//   interrupted  the channel closed midway; a new offer with the same id resumes
//   done | declined | cancelled | failed   over (done: written and hash-checked)

import { MessageRegistry } from '../connection/channels.js';
import { Emitter } from '../core/events.js';
import { Sha256 } from './sha256.js';
import { shownText } from '../core/plaintext.js';

export const LABEL_PREFIX = 'file:';
export const CHUNK_SIZE = 64 * 1024; // fits every peer's max-message-size (aiortc: 64 KiB)
export const MAX_CHUNK_SIZE = 256 * 1024; // Chromium's max-message-size
export const READ_SIZE = 1024 * 1024; // the sender reads the file this much at a time
export const HIGH_WATER = 4 * 1024 * 1024; // stop sending while this much is buffered...
export const LOW_WATER = 1024 * 1024; // ...and resume when it drains to this
export const WINDOW = 16 * 1024 * 1024; // at most this much sent beyond the receiver's last ack
export const ACK_EVERY = 1024 * 1024; // the receiver acknowledges written bytes this often
export const MAX_NAME_CHARS = 255;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const HASH_PATTERN = /^[0-9a-f]{64}$/;

export const FINISHED = Object.freeze(new Set(['done', 'declined', 'cancelled', 'failed']));

/**
 * @typedef {'offering' | 'sending' | 'verifying' | 'interrupted' | 'done' | 'declined' | 'cancelled'
 *   | 'failed'} SenderStateName
 */
/**
 * @typedef {'offered' | 'receiving' | 'verifying' | 'interrupted' | 'done' | 'declined' | 'cancelled'
 *   | 'failed'} ReceiverStateName
 */
/**
 * @typedef {'accept' | 'decline' | 'done' | 'drop' | 'cancel' | 'fail' | 'sent' | 'resume' | 'end'
 *   | 'verified'} TransferEvent what a SENDER or RECEIVER table moves on
 */
/**
 * @template {string} S
 * @typedef {Readonly<Record<S, Readonly<Partial<Record<TransferEvent, S>>>>>} Table
 */

/** @type {Table<SenderStateName>} */
export const SENDER = Object.freeze({
  // done: a resumed offer the receiver had already finished verifying.
  offering: {
    accept: 'sending',
    decline: 'declined',
    done: 'done',
    drop: 'interrupted',
    cancel: 'cancelled',
    fail: 'failed',
  },
  sending: { sent: 'verifying', drop: 'interrupted', cancel: 'cancelled', fail: 'failed' },
  verifying: { done: 'done', drop: 'interrupted', cancel: 'cancelled', fail: 'failed' },
  interrupted: { resume: 'offering', cancel: 'cancelled', fail: 'failed' },
  done: {},
  declined: {},
  cancelled: {},
  failed: {},
});

/** @type {Table<ReceiverStateName>} */
export const RECEIVER = Object.freeze({
  offered: { accept: 'receiving', decline: 'declined', cancel: 'cancelled', fail: 'failed' },
  receiving: { end: 'verifying', drop: 'interrupted', cancel: 'cancelled', fail: 'failed' },
  verifying: { verified: 'done', cancel: 'cancelled', fail: 'failed' },
  interrupted: { resume: 'receiving', cancel: 'cancelled', fail: 'failed' },
  done: {},
  declined: {},
  cancelled: {},
  failed: {},
});

/**
 * A state and its transition table. Events: `state` ({from, to, event}).
 * @template {string} S
 */
export class TransferState extends Emitter {
  /** @param {Table<S>} table @param {S} initial */
  constructor(table, initial) {
    super();
    this.table = table;
    this.state = initial;
    /** Why it ended: a user-facing sentence for failed/cancelled, '' otherwise. */
    this.reason = '';
  }

  /** @param {TransferEvent} event @param {string} [reason] */
  fire(event, reason = '') {
    const from = this.state;
    const to = this.table[from][event];
    if (!to) return false;
    this.state = to;
    if (reason) this.reason = reason;
    this.emit('state', { from, to, event });
    return true;
  }

  /** @param {...S} states */
  is(...states) {
    return states.includes(this.state);
  }

  get finished() {
    return FINISHED.has(this.state);
  }
}

/** @param {string} id @param {number} attempt */
export function transferLabel(id, attempt) {
  return `${LABEL_PREFIX}${id}:${attempt}`;
}

/** The transfer id of a channel label, or null if it is not a transfer channel. @param {string} label */
export function transferIdOf(label) {
  if (!label.startsWith(LABEL_PREFIX)) return null;
  const [id, attempt, ...rest] = label.slice(LABEL_PREFIX.length).split(':');
  return ID_PATTERN.test(id) && /^\d{1,6}$/.test(attempt ?? '') && rest.length === 0 ? id : null;
}

/** A fresh random transfer id (128 bits, URL-safe). */
export function newTransferId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * `partial` (ext): the sender can continue from the start of this file that the receiver
 * already has from an earlier transfer (docs/protocol.md §9.2, "Sent again").
 * @typedef {{id: string, name: string, size: number, type: string, chunkSize: number, sha256?: string,
 *   partial?: boolean}} Offer
 */

const isOffset = (/** @type {unknown} */ v) => Number.isSafeInteger(v) && /** @type {number} */ (v) >= 0;
const isText = (/** @type {unknown} */ v, /** @type {number} */ max) =>
  typeof v === 'string' && v.length <= max;

/** What a transfer's channel may say, for one transfer (`id`) of its own (docs/protocol.md §9.2). */
const isTransfer = (/** @type {unknown} */ d) =>
  typeof d === 'object' && d !== null && typeof (/** @type {any} */ (d).id) === 'string';
/** @type {Record<string, (data: any) => boolean>} */
const CHECKS = {
  'file-offer': (d) =>
    isText(d.name, MAX_NAME_CHARS) &&
    d.name.length > 0 &&
    isOffset(d.size) &&
    isText(d.type, 255) &&
    Number.isSafeInteger(d.chunkSize) &&
    d.chunkSize > 0 &&
    d.chunkSize <= MAX_CHUNK_SIZE &&
    (d.sha256 === undefined || (typeof d.sha256 === 'string' && HASH_PATTERN.test(d.sha256))) &&
    (d.partial === undefined || typeof d.partial === 'boolean'),
  'file-accept': (d) =>
    isOffset(d.offset) &&
    (d.sha256 === undefined || (typeof d.sha256 === 'string' && HASH_PATTERN.test(d.sha256))),
  'file-decline': () => true,
  'file-ack': (d) => isOffset(d.offset),
  'file-end': (d) => typeof d.sha256 === 'string' && HASH_PATTERN.test(d.sha256),
  'file-done': () => true,
  'file-cancel': (d) => d.reason === undefined || isText(d.reason, 500),
  'file-error': (d) => isText(d.message, 500),
};
/** Any transfer channel (each is named for its transfer; every one speaks only these). */
const TRANSFER_CHANNEL = 'file';
const MAX_MESSAGE_CHARS = 4096;
/** The message types of a transfer's channel: one registry, like a call's and a data link's. */
const TRANSFER_MESSAGES = Object.entries(CHECKS).reduce(
  (types, [type, check]) =>
    types.define(type, /** @type {(d: unknown) => d is any} */ ((d) => isTransfer(d) && check(d)), {
      channel: TRANSFER_CHANNEL,
    }),
  new MessageRegistry(),
);

/**
 * Parse one text message of a transfer channel: `{type, data}` or `{error}` (a sentence).
 * @param {unknown} raw @param {string} id the transfer this channel belongs to
 * @returns {{type: string, data: any, error?: undefined} | {error: string}}
 */
export function parseMessage(raw, id) {
  const unreadable = { error: 'The other device sent a message this app cannot read.' };
  if (typeof raw !== 'string' || raw.length > MAX_MESSAGE_CHARS) return unreadable;
  const message = TRANSFER_MESSAGES.decode(TRANSFER_CHANNEL, raw);
  return message && message.data.id === id ? message : unreadable;
}

/** @param {string} type @param {object} data */
export const encode = (type, data) => JSON.stringify({ type, data });

/**
 * Bytes per second over a sliding window of recent progress, and the time left.
 */
export class Speed {
  /** @param {() => number} clock milliseconds @param {number} [windowMs] */
  constructor(clock, windowMs = 3000) {
    this.clock = clock;
    this.windowMs = windowMs;
    /** @type {Array<[number, number]>} */
    this.samples = [];
  }

  /** @param {number} bytes done so far */
  add(bytes) {
    const now = this.clock();
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
  }

  reset() {
    this.samples = [];
  }

  /** Bytes per second, 0 until there are two samples. */
  get rate() {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }

  /** Seconds left for `remaining` bytes, or null when unknown. @param {number} remaining */
  eta(remaining) {
    const rate = this.rate;
    return rate > 0 ? remaining / rate : null;
  }
}

/**
 * The parts of an RTCDataChannel a transfer uses (a fake in the tests).
 * @typedef {{
 *   label: string, readyState: string, bufferedAmount: number, bufferedAmountLowThreshold: number,
 *   binaryType: string, send(data: string | ArrayBufferView | ArrayBuffer): void, close: () => void,
 *   addEventListener: (type: string, listener: (event: any) => void,
 *     options?: AddEventListenerOptions) => void,
 * }} Channel
 */

/**
 * What a transfer has in common: its state, its current channel, progress.
 * Events: `state` ({from, to, event}), `progress` ({bytes, size, rate, eta}).
 * @template {string} S
 */
class Transfer extends Emitter {
  /** @param {Offer} offer @param {TransferState<S>} state @param {() => number} clock */
  constructor(offer, state, clock) {
    super();
    this.offer = offer;
    this.id = offer.id;
    this.machine = state;
    this.machine.on('state', (/** @type {any} */ change) => {
      if (this.machine.finished) this.detach();
      this.emit('state', change);
    });
    this.speed = new Speed(clock);
    /** Bytes confirmed: written by the receiver (both sides show this). */
    this.bytes = 0;
    /** @type {Channel | null} */
    this.channel = null;
    /** @type {AbortController | null} */
    this.listening = null;
  }

  get state() {
    return this.machine.state;
  }

  get reason() {
    return this.machine.reason;
  }

  get finished() {
    return this.machine.finished;
  }

  /** @param {number} bytes */
  progress(bytes) {
    this.bytes = bytes;
    this.speed.add(bytes);
    this.emit('progress', {
      bytes,
      size: this.offer.size,
      rate: this.speed.rate,
      eta: this.speed.eta(this.offer.size - bytes),
    });
  }

  /** @param {Channel} channel */
  listen(channel) {
    this.detach();
    this.channel = channel;
    this.listening = new AbortController();
    const signal = this.listening.signal;
    channel.binaryType = 'arraybuffer';
    channel.addEventListener('message', (/** @type {MessageEvent} */ event) => this.receive(event.data), {
      signal,
    });
    channel.addEventListener('close', () => this.channel === channel && this.dropped(), { signal });
    channel.addEventListener('open', () => this.channel === channel && this.opened(), { signal });
    if (channel.readyState === 'open') this.opened();
  }

  /** Stop listening to the current channel and close it. */
  detach() {
    this.listening?.abort();
    this.listening = null;
    const channel = this.channel;
    this.channel = null;
    if (channel && channel.readyState !== 'closed' && channel.readyState !== 'closing') {
      // Let queued messages (a final cancel or error) go out first.
      if (channel.bufferedAmount === 0) channel.close();
      else setTimeout(() => channel.close(), 1000);
    }
  }

  /** @param {string} type @param {object} [data] */
  post(type, data = {}) {
    if (this.channel?.readyState !== 'open') return false;
    this.channel.send(encode(type, { id: this.id, ...data }));
    return true;
  }

  /** Our user cancels. @param {string} [reason] */
  cancel(reason = 'Cancelled.') {
    if (this.finished) return false;
    this.post('file-cancel', { reason });
    return this.machine.fire('cancel', reason);
  }

  /** The other side broke the protocol: tell them, and fail this transfer only. @param {string} message */
  fail(message) {
    if (this.finished) return false;
    this.post('file-error', { message });
    return this.machine.fire('fail', message);
  }

  /** @param {{type: string, data: any}} message @returns {boolean} whether it was handled */
  common({ type, data }) {
    if (type === 'file-cancel') {
      this.machine.fire('cancel', theirWords('The other side cancelled', data.reason));
      return true;
    }
    if (type === 'file-error') {
      this.machine.fire('fail', theirWords('The other device reported a problem', data.message));
      return true;
    }
    return false;
  }

  opened() {}
  dropped() {}
  /** @param {unknown} _data */
  receive(_data) {}
}

/**
 * Where the sender's bytes come from: a File in the browser, a buffer in the tests.
 * @typedef {{read: (offset: number, length: number) => Promise<Uint8Array>}} Source
 */
/**
 * `peek`: the digest of what was hashed so far, the hash going on.
 * @typedef {{update: (bytes: Uint8Array) => unknown, hex: () => string | Promise<string>,
 *   peek: () => string | Promise<string>}} Hasher
 */

/**
 * The sending side of one transfer.
 * @extends {Transfer<SenderStateName>}
 */
export class FileSender extends Transfer {
  /**
   * @param {{id?: string, name: string, size: number, type?: string}} file
   * @param {Source} source
   * @param {{chunkSize?: number, sha256?: string, clock?: () => number, hasher?: Hasher,
   *   window?: number, highWater?: number, lowWater?: number, readSize?: number}} [options]
   */
  constructor(file, source, options = {}) {
    const chunkSize = options.chunkSize ?? CHUNK_SIZE;
    /** @type {Offer} */
    const offer = {
      id: file.id ?? newTransferId(),
      name: file.name,
      size: file.size,
      type: file.type || '',
      chunkSize,
      partial: true,
    };
    if (options.sha256) offer.sha256 = options.sha256;
    super(
      offer,
      new TransferState(SENDER, /** @type {SenderStateName} */ ('offering')),
      options.clock ?? Date.now,
    );
    this.source = source;
    this.hasher = options.hasher ?? new Sha256();
    this.window = options.window ?? WINDOW;
    this.highWater = options.highWater ?? HIGH_WATER;
    this.lowWater = options.lowWater ?? LOW_WATER;
    this.readSize = Math.max(chunkSize, Math.floor((options.readSize ?? READ_SIZE) / chunkSize) * chunkSize);
    /** Channel attempts so far (each has its own label). */
    this.attempt = 0;
    /** Next byte to send. */
    this.offset = 0;
    /** Bytes fed to the hash (each byte once, even when a resume sends it again). */
    this.hashed = 0;
    this.pumping = false;
    /** @type {number | null} where the last resumed attempt started (null: never resumed) */
    this.resumedFrom = null;
    /** @type {string | undefined} the whole file's SHA-256, once every byte was hashed */
    this.sha256 = undefined;
    /** @type {(() => void) | null} */
    this.wake = null;
    /** Hashing the part the receiver already has, before going on from there. */
    this.continuing = false;
    /** @type {number | null} an accept that came on a new channel while hashing */
    this.deferredAccept = null;
  }

  /** The label for the next channel; call `attach` with the channel opened under it. */
  nextLabel() {
    this.attempt += 1;
    return transferLabel(this.id, this.attempt);
  }

  /**
   * Use this channel (the first one, or a new one after an interruption).
   * @param {Channel} channel
   */
  attach(channel) {
    if (this.finished) {
      channel.close();
      return;
    }
    channel.bufferedAmountLowThreshold = this.lowWater;
    if (this.machine.is('interrupted')) this.machine.fire('resume');
    this.listen(channel);
    channel.addEventListener('bufferedamountlow', () => this.poke(), { signal: this.listening?.signal });
  }

  opened() {
    if (this.machine.is('offering')) this.post('file-offer', this.offer);
  }

  dropped() {
    this.channel = null;
    this.machine.fire('drop');
    this.poke();
  }

  /** @param {unknown} raw */
  receive(raw) {
    if (this.finished) return;
    const message = parseMessage(raw, this.id);
    if (message.error !== undefined) return void this.fail(message.error);
    if (this.common(message)) return;
    const { type, data } = message;
    if (type === 'file-accept' && this.machine.is('offering') && this.continuing) {
      this.deferredAccept = data.offset; // a resume on a new channel while we hash: after that
    } else if (
      type === 'file-accept' &&
      this.machine.is('offering') &&
      this.attempt === 1 &&
      data.offset > 0 &&
      data.sha256
    ) {
      this.continueFrom(data.offset, data.sha256);
    } else if (type === 'file-accept' && this.machine.is('offering')) {
      this.sendFrom(data.offset);
    } else if (type === 'file-decline' && this.machine.is('offering')) {
      this.machine.fire('decline', 'Declined.');
    } else if (type === 'file-ack' && this.machine.is('sending', 'verifying')) {
      if (data.offset < this.bytes || data.offset > this.offset)
        return void this.fail('The receiver acknowledged bytes that were not sent.');
      this.progress(data.offset);
      this.poke();
    } else if (
      type === 'file-done' &&
      this.machine.is('verifying', 'offering') &&
      this.hashed === this.offer.size
    ) {
      this.progress(this.offer.size);
      this.machine.fire('done');
    } else {
      this.fail(`The receiver sent ${type} at the wrong time.`);
    }
  }

  /** The receiver accepted from `offset` (0, or what it has written before a drop). @param {number} offset */
  sendFrom(offset) {
    if (offset > this.offer.size || offset > this.hashed)
      return void this.fail('The receiver asked to resume past the data sent.');
    this.offset = offset;
    if (this.attempt > 1 || offset > 0) this.resumedFrom = offset;
    this.speed.reset();
    this.progress(offset);
    this.machine.fire('accept');
    this.pump();
  }

  /**
   * The receiver has the first `offset` bytes of this file from an earlier transfer (ours
   * before a reload, or anyone's): hash our own first `offset` bytes, and go on from there
   * if they are the same, else say that it is another file (the receiver then drops what
   * it had, and the next attempt starts from the beginning).
   * @param {number} offset @param {string} expected the SHA-256 of their first `offset` bytes
   */
  async continueFrom(offset, expected) {
    if (offset > this.offer.size)
      return void this.fail('The receiver asked to continue past the end of the file.');
    this.continuing = true;
    this.deferredAccept = null;
    const attempt = this.attempt;
    try {
      for (let at = 0; at < offset; at += this.readSize) {
        const block = await this.source.read(at, Math.min(this.readSize, offset - at));
        if (block.length === 0) return void this.fail('The file could not be read any more.');
        this.hasher.update(block);
      }
      this.hashed = offset;
      const prefix = await this.hasher.peek();
      if (prefix !== expected) {
        return void this.fail(
          'The part received earlier is from another file: send it again to start from the beginning.',
        );
      }
    } catch (error) {
      return void this.fail(`The file could not be read: ${error instanceof Error ? error.message : error}`);
    } finally {
      this.continuing = false;
    }
    if (!this.machine.is('offering')) return;
    // Dropped meanwhile: the next channel's accept (kept while we hashed) says where.
    if (this.attempt !== attempt) {
      const deferred = this.deferredAccept;
      this.deferredAccept = null;
      if (deferred !== null) this.sendFrom(deferred);
      return;
    }
    this.sendFrom(offset);
  }

  /** Wake the send loop (buffer drained, ack arrived, state changed). */
  poke() {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Whether the channel or the receiver's window says wait. @param {Channel} channel */
  full(channel) {
    return channel.bufferedAmount > this.highWater || this.offset - this.bytes >= this.window;
  }

  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.machine.is('sending')) {
        const channel = this.channel;
        if (!channel || channel.readyState !== 'open') return;
        if (this.offset >= this.offer.size) {
          this.sha256 ??= await this.hasher.hex(); // once: a resume after the end sends it again
          this.post('file-end', { sha256: this.sha256 });
          this.machine.fire('sent');
          return;
        }
        if (this.full(channel)) {
          await new Promise((resolve) => (this.wake = () => resolve(undefined)));
          continue;
        }
        const start = this.offset;
        const block = await this.source.read(start, Math.min(this.readSize, this.offer.size - start));
        if (block.length === 0) return void this.fail('The file could not be read any more.');
        if (start <= this.hashed && this.hashed < start + block.length) {
          this.hasher.update(block.subarray(this.hashed - start));
          this.hashed = start + block.length;
        }
        // Send the block chunk by chunk; a full buffer mid-block waits here.
        for (let at = 0; at < block.length; at += this.offer.chunkSize) {
          if (!this.machine.is('sending') || this.channel !== channel || channel.readyState !== 'open')
            return;
          while (this.full(channel) && this.machine.is('sending') && this.channel === channel) {
            await new Promise((resolve) => (this.wake = () => resolve(undefined)));
          }
          if (!this.machine.is('sending') || this.channel !== channel) return;
          channel.send(block.subarray(at, Math.min(at + this.offer.chunkSize, block.length)));
          this.offset = start + Math.min(at + this.offer.chunkSize, block.length);
        }
      }
    } catch (error) {
      this.fail(`The file could not be read: ${error instanceof Error ? error.message : error}`);
    } finally {
      this.pumping = false;
    }
  }
}

/**
 * Where the receiver's bytes go: a file in the origin private file system in the
 * browser, memory in the tests. `write` appends; `digest` flushes and returns the
 * SHA-256 hex of everything written; `discard` deletes it (nothing saved as good).
 * `writeMany` (optional) writes several chunks at once, in order.
 * @typedef {{write: (bytes: Uint8Array) => Promise<void> | void, digest: () => Promise<string> | string,
 *   discard: () => Promise<void> | void, writeMany?: (parts: Uint8Array[]) => Promise<void> | void}} Sink
 */

/**
 * The receiving side of one transfer.
 * @extends {Transfer<ReceiverStateName>}
 */
export class FileReceiver extends Transfer {
  /**
   * @param {Offer} offer validated by parseMessage
   * @param {{clock?: () => number, ackEvery?: number}} [options]
   */
  constructor(offer, options = {}) {
    super(
      offer,
      new TransferState(RECEIVER, /** @type {ReceiverStateName} */ ('offered')),
      options.clock ?? Date.now,
    );
    this.ackEvery = options.ackEvery ?? ACK_EVERY;
    /** @type {Sink | null} */
    this.sink = null;
    /** Bytes that arrived (some may still be on their way to the sink). */
    this.received = 0;
    /** Bytes the sink has written. */
    this.written = 0;
    this.acked = 0;
    /** Writes happen one after another, in arrival order. */
    this.writes = Promise.resolve();
    /** @type {Uint8Array[]} chunks that arrived while a write was on its way */
    this.queued = [];
    this.writing = false;
    /** The announced hash from `file-end`, once it came. */
    this.expected = '';
    /** @type {number | null} bytes this transfer started with, kept from an earlier one */
    this.continuedFrom = null;
  }

  /**
   * Read the first message of a new transfer channel: its offer, or null (with the
   * channel closed) if it is not a well-formed offer.
   * @param {string} raw @param {string} id from the channel's label
   */
  static offerOf(raw, id) {
    const message = parseMessage(raw, id);
    return message.error === undefined && message.type === 'file-offer'
      ? /** @type {Offer} */ (message.data)
      : null;
  }

  /** Our user accepts; bytes go to `sink`. @param {Sink} sink */
  accept(sink) {
    if (!this.machine.is('offered')) return false;
    this.sink = sink;
    this.machine.fire('accept');
    if (this.channel?.readyState === 'open') this.post('file-accept', { offset: 0 });
    else this.machine.fire('drop');
    return true;
  }

  /**
   * Our user accepts, and `sink` already holds the first `offset` bytes of this file from
   * an earlier transfer (its sender could not resume it): the sender checks `sha256`, the
   * SHA-256 of those bytes, and sends the rest (only a sender whose offer says `partial`).
   * @param {Sink} sink @param {number} offset @param {string} sha256
   */
  acceptFrom(sink, offset, sha256) {
    if (!this.machine.is('offered') || !this.offer.partial || offset > this.offer.size) return false;
    this.sink = sink;
    this.received = this.written = this.acked = offset;
    this.continuedFrom = offset;
    this.progress(offset); // before the state change, which repaints at once
    this.machine.fire('accept');
    if (this.channel?.readyState === 'open') this.post('file-accept', { offset, sha256 });
    else this.machine.fire('drop');
    return true;
  }

  decline() {
    if (!this.machine.is('offered')) return false;
    this.post('file-decline');
    return this.machine.fire('decline', 'Declined.');
  }

  /**
   * A channel for this transfer: the one the offer came on, or a new one after an
   * interruption (its first message, the repeated offer, has been read by the caller).
   * @param {Channel} channel @param {Offer} [offer] the offer that came on it
   */
  attach(channel, offer) {
    if (this.finished) {
      // A sender that missed our last word (the channel dropped just before it) hears it now.
      this.listen(channel);
      return;
    }
    if (offer && !sameFile(offer, this.offer)) {
      this.listen(channel);
      this.fail('The file changed since it was offered.');
      return;
    }
    this.listen(channel);
    if (this.machine.is('interrupted')) this.resume();
  }

  async resume() {
    await this.writes; // everything that arrived is on disk: resume from there
    if (!this.machine.is('interrupted')) return;
    this.received = this.written;
    this.machine.fire('resume');
    this.speed.reset();
    this.post('file-accept', { offset: this.written });
  }

  opened() {
    if (!this.finished) return;
    const last = {
      done: () => this.post('file-done'),
      declined: () => this.post('file-decline'),
      cancelled: () => this.post('file-cancel', { reason: this.reason }),
      failed: () => this.post('file-error', { message: this.reason }),
    }[/** @type {'done' | 'declined' | 'cancelled' | 'failed'} */ (this.state)];
    last();
    const channel = this.channel;
    this.channel = null;
    this.listening?.abort();
    setTimeout(() => channel?.close(), 1000);
  }

  dropped() {
    this.channel = null;
    this.machine.fire('drop');
  }

  /** @param {unknown} raw */
  receive(raw) {
    if (this.finished) return;
    if (typeof raw !== 'string') return this.chunk(raw);
    const message = parseMessage(raw, this.id);
    if (message.error !== undefined) return void this.fail(message.error);
    if (this.common(message)) return;
    const { type, data } = message;
    if (type === 'file-offer' && this.machine.is('offered') && sameFile(data, this.offer)) return; // repeated
    if (type === 'file-end' && this.machine.is('receiving')) {
      if (this.received !== this.offer.size) {
        return void this.fail(`The file ended after ${this.received} of ${this.offer.size} bytes.`);
      }
      if (this.offer.sha256 && data.sha256 !== this.offer.sha256) {
        return void this.fail('The file’s checksum changed during the transfer.');
      }
      this.expected = data.sha256;
      this.machine.fire('end');
      this.verify();
      return;
    }
    this.fail(`The sender sent ${type} at the wrong time.`);
  }

  /** @param {unknown} data a binary message */
  chunk(data) {
    if (!this.machine.is('receiving')) return void this.fail('The sender sent file data at the wrong time.');
    const bytes =
      data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : null;
    if (!bytes) return void this.fail('The other device sent a message this app cannot read.');
    if (bytes.length > this.offer.chunkSize) {
      return void this.fail(
        `The sender sent a piece of ${bytes.length} bytes; it announced at most ${this.offer.chunkSize}.`,
      );
    }
    if (this.received + bytes.length > this.offer.size) {
      return void this.fail(`The sender sent more than the ${this.offer.size} bytes it announced.`);
    }
    this.received += bytes.length;
    this.queued.push(bytes);
    if (!this.writing) {
      this.writing = true;
      this.writes = this.writes.then(() => this.writeQueued());
    }
  }

  /**
   * Write what arrived, in order: everything that came while the last write was on its
   * way goes in one write (one message to the disk worker instead of one per chunk).
   */
  async writeQueued() {
    const sink = /** @type {Sink} */ (this.sink);
    try {
      while (this.queued.length && !this.finished) {
        // A sink without writeMany takes one chunk at a time, each counted as it lands.
        const batches = sink.writeMany ? [this.queued] : this.queued.map((part) => [part]);
        this.queued = [];
        for (const parts of batches) {
          if (this.finished) return;
          const length = parts.reduce((n, part) => n + part.length, 0); // before a worker takes the buffers
          try {
            if (sink.writeMany) await sink.writeMany(parts);
            else await sink.write(parts[0]);
          } catch (error) {
            this.fail(`The file could not be written on this device: ${describe(error)}`);
            return;
          }
          this.written += length;
          this.progress(this.written);
          if (this.written - this.acked >= this.ackEvery && this.post('file-ack', { offset: this.written }))
            this.acked = this.written;
        }
      }
    } finally {
      this.queued = [];
      this.writing = false;
    }
  }

  async verify() {
    await this.writes;
    if (!this.machine.is('verifying')) return;
    const sink = /** @type {Sink} */ (this.sink);
    let actual;
    try {
      actual = await sink.digest();
    } catch (error) {
      this.fail(`The file could not be checked on this device: ${describe(error)}`);
      return;
    }
    if (actual !== this.expected) {
      this.fail('The file arrived damaged (its SHA-256 does not match); nothing was saved.');
      return;
    }
    this.post('file-done');
    this.machine.fire('verified');
  }

  /** @param {string} message */
  fail(message) {
    const failed = super.fail(message);
    if (failed) this.discard();
    return failed;
  }

  /** @param {string} [reason] */
  cancel(reason) {
    const cancelled = super.cancel(reason);
    if (cancelled) this.discard();
    return cancelled;
  }

  /** @param {{type: string, data: any}} message */
  common(message) {
    const handled = super.common(message);
    if (handled && this.finished) this.discard();
    return handled;
  }

  discard() {
    const sink = this.sink;
    if (sink) this.writes = this.writes.then(() => sink.discard()).catch(() => {});
  }
}

/** @param {Offer} a @param {Offer} b */
function sameFile(a, b) {
  return (
    a.name === b.name &&
    a.size === b.size &&
    a.type === b.type &&
    a.chunkSize === b.chunkSize &&
    a.sha256 === b.sha256
  );
}

/** @param {unknown} error */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}

/** A sink in memory that hashes what it is given (tests, small files). */
export class MemorySink {
  constructor() {
    /** @type {Uint8Array[]} */
    this.parts = [];
    this.hash = new Sha256();
    this.discarded = false;
  }

  /** @param {Uint8Array} bytes */
  write(bytes) {
    this.parts.push(bytes.slice());
    this.hash.update(bytes);
  }

  digest() {
    return this.hash.hex();
  }

  peek() {
    return this.hash.peek();
  }

  discard() {
    this.parts = [];
    this.discarded = true;
  }

  bytes() {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of this.parts) (out.set(part, at), (at += part.length));
    return out;
  }
}

/** Human sizes: 0 B, 512 KB, 3.4 MB, 1.2 GB. @param {number} bytes */
export function formatBytes(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) ((value /= 1000), (unit += 1));
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** Time left: "12 s left", "3 min left", or '' when unknown. @param {number | null} seconds */
export function formatEta(seconds) {
  if (seconds === null || !Number.isFinite(seconds)) return '';
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s left`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min left`;
  return `${(seconds / 3600).toFixed(1)} h left`;
}

/**
 * What the other side said about ending a transfer, as plain words of ours: "Cancelled."
 * after "The other side cancelled" says nothing, and their text is shown without format
 * characters and at most 200 characters long.
 * @param {string} lead @param {unknown} said
 */
export function theirWords(lead, said) {
  const text = typeof said === 'string' ? shownText(said).trim().slice(0, 200) : '';
  if (!text || /^cancell?ed\.?$/i.test(text)) return `${lead}.`;
  return `${lead}: ${text}${/[.!?…]$/.test(text) ? '' : '.'}`;
}
