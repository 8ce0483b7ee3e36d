// Peer-to-peer messages over RTCDataChannels: registries of message types, one per kind
// of connection (a call's, a data link's, each made by the role that owns it and passed
// in), and the named channels of one link that carry them (docs/protocol.md §6).
//
// A message type is declared once in its kind's registry, with the channel it travels on
// and a check of its `data`; features (chat, typing, the media state, files,
// verification) subscribe to types on a link (`link.subscribe`) and never touch a channel.
// The default channel is the negotiated `chat` channel with id 0 that every call has (so
// old peers keep working); further channels are opened by name, on demand, with their own
// options (e.g. one ordered reliable channel per file transfer), and the other side picks
// them up by label.

import { Emitter } from '../core/events.js';

export const SERVICE_CHANNEL = 'chat'; // label of the default channel (negotiated, id 0)
const SERVICE_CHANNEL_ID = 0;
const MAX_MESSAGE_CHARS = 64 * 1024; // larger text messages are dropped, not parsed

/**
 * @template T
 * @typedef {{channel: string, check: (data: unknown) => data is T}} MessageType
 */

/** The message types this client speaks, by name. Unknown types are ignored on receipt. */
export class MessageRegistry {
  constructor() {
    /** @type {Map<string, MessageType<any>>} */
    this.types = new Map();
  }

  /**
   * @template T
   * @param {string} type @param {(data: unknown) => data is T} check
   * @param {{channel?: string}} [options]
   */
  define(type, check, { channel = SERVICE_CHANNEL } = {}) {
    if (this.types.has(type)) throw new Error(`message type ${type} is defined twice`);
    this.types.set(type, { channel, check });
    return this;
  }

  /**
   * Parse one received text message. Returns `{type, data}` for a known, well-formed
   * message that came on its own channel, or null (ignored).
   * @param {string} label the channel it came on @param {unknown} raw
   */
  decode(label, raw) {
    if (typeof raw !== 'string' || raw.length > MAX_MESSAGE_CHARS) return null;
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return null;
    }
    const type = message?.type;
    const entry = typeof type === 'string' ? this.types.get(type) : undefined;
    if (!entry || entry.channel !== label || !entry.check(message.data)) return null;
    return { type, data: message.data };
  }

  /** @param {string} type @param {unknown} [data] */
  encode(type, data) {
    const entry = this.types.get(type);
    if (!entry) throw new Error(`unknown message type ${type}`);
    if (!entry.check(data)) throw new Error(`bad data for message type ${type}`);
    return { channel: entry.channel, text: JSON.stringify(data === undefined ? { type } : { type, data }) };
  }
}

/**
 * The types every call speaks (docs/protocol.md §6): a fresh registry for the role that
 * owns calls' connections (a data link's adds its own, public/data/datalinks.js).
 */
export function callMessages() {
  return (
    new MessageRegistry()
      .define('chat', /** @returns {data is string} */ (data) => typeof data === 'string')
      .define('typing', /** @returns {data is boolean} */ (data) => typeof data === 'boolean')
      .define(
        'media',
        /** @returns {data is {audio: boolean, video: boolean}} */
        (data) =>
          typeof data === 'object' &&
          data !== null &&
          typeof (/** @type {any} */ (data).audio) === 'boolean' &&
          typeof (/** @type {any} */ (data).video) === 'boolean',
      )
      // `reason` (ext): why, e.g. `left` for a page closed or reloaded; older peers send none.
      .define(
        'disconnect',
        /** @returns {data is undefined | null | {reason?: string}} */
        (/** @type {any} */ data) =>
          data === undefined ||
          data === null ||
          (typeof data === 'object' &&
            !Array.isArray(data) &&
            (data.reason === undefined || (typeof data.reason === 'string' && data.reason.length <= 64))),
      )
      // (ext) The sender holds this connection until its person confirms our device (docs/verification.md):
      // true while it waits, false once it goes on. Nothing else crosses a hold either way.
      .define('hold', /** @returns {data is boolean} */ (data) => typeof data === 'boolean')
      // (ext) The security code's commit-then-reveal (docs/verification.md): a commitment
      // first, the nonce only once the other side's commitment is in. 64 lower-case hex.
      .define(
        'verify-commit',
        /** @returns {data is string} */ (data) => typeof data === 'string' && /^[0-9a-f]{64}$/.test(data),
      )
      .define(
        'verify-reveal',
        /** @returns {data is string} */ (data) => typeof data === 'string' && /^[0-9a-f]{64}$/.test(data),
      )
  );
}

/** Messages kept from a held connection, shown if its person goes on (past this: dropped). */
export const HELD_INCOMING = 64;
/**
 * What crosses a verification hold: the end of the call, the hold itself, and the code's
 * exchange (a held link is the one whose code its person needs to compare).
 */
const THROUGH_A_HOLD = new Set(['disconnect', 'hold', 'verify-commit', 'verify-reveal']);

/**
 * Subscribe to one message type on anything that emits `message` ({type, data}) events
 * (a `PeerChannels`, a call's link), until the returned function is called or
 * `options.signal` aborts. Links offer it as `link.subscribe(type, handler)`.
 * @param {{on: (type: string, listener: (detail: any) => void,
 *   options?: AddEventListenerOptions) => void}} source
 * @param {string} type @param {(data: any) => void} handler @param {AddEventListenerOptions} [options]
 * @returns {() => void}
 */
export function onMessage(source, type, handler, options) {
  let listening = true;
  source.on(
    'message',
    (/** @type {{type: string, data: unknown}} */ message) => {
      if (listening && message.type === type) handler(message.data);
    },
    options,
  );
  return () => {
    listening = false;
  };
}

/**
 * The data channels of one RTCPeerConnection. Events: `message` ({type, data}) for every
 * well-formed message of a registered type, `ignored` (label: a service-channel message
 * that was not one), `open` (label), `close` (label), `kept` (count: messages kept while
 * held, delivered if the hold is lifted).
 */
export class PeerChannels extends Emitter {
  /**
   * @param {Pick<RTCPeerConnection, 'createDataChannel'> & {ondatachannel: any}} pc
   * @param {MessageRegistry} types what its connection's kind speaks
   */
  constructor(pc, types) {
    super();
    this.pc = pc;
    this.types = types;
    /** @type {Map<string, RTCDataChannel>} */
    this.channels = new Map();
    this.holding = false;
    /** @type {{type: string, data: unknown}[]} what they sent while we held the connection */
    this.kept = [];
    this.adopt(pc.createDataChannel(SERVICE_CHANNEL, { negotiated: true, id: SERVICE_CHANNEL_ID }));
    pc.ondatachannel = (/** @type {RTCDataChannelEvent} */ event) => this.adopt(event.channel);
  }

  /**
   * The named channel, opened on first use with `options`. One side opens a purpose's
   * channel (e.g. the sender of a file); the other adopts it by label when it arrives.
   * @param {string} label @param {RTCDataChannelInit} [options]
   */
  open(label, options = { ordered: true }) {
    return this.channels.get(label) ?? this.adopt(this.pc.createDataChannel(label, options));
  }

  /**
   * Verification hold (public/verify/guard.js): nothing of ours but `disconnect` goes out, what
   * they send is kept (not acted on) until the hold is lifted, and they are told either
   * way (`hold`), so their screen can say why nothing arrives (issue 19, 5).
   */
  get held() {
    return this.holding;
  }

  set held(on) {
    if (on === this.holding) return;
    this.holding = on;
    if (this.types.types.has('hold')) this.send('hold', on); // a registry of its own may not speak it
    if (on) return;
    const kept = this.kept;
    this.kept = [];
    for (const message of kept) this.emit('message', message);
  }

  /**
   * Send a registered message on its channel. Returns false when that channel is not
   * open (the message is dropped: data-channel messages are for the live link only).
   * @param {string} type @param {unknown} [data]
   */
  send(type, data) {
    const { channel, text } = this.types.encode(type, data);
    if (this.holding && !THROUGH_A_HOLD.has(type)) return false;
    const dc = channel === SERVICE_CHANNEL ? this.channels.get(channel) : this.open(channel);
    if (dc?.readyState !== 'open') return false;
    dc.send(text);
    return true;
  }

  /** @param {string} label */
  isOpen(label = SERVICE_CHANNEL) {
    return this.channels.get(label)?.readyState === 'open';
  }

  close() {
    for (const dc of this.channels.values()) dc.close();
    this.channels.clear();
  }

  /** @param {RTCDataChannel} dc */
  adopt(dc) {
    const existing = this.channels.get(dc.label);
    if (existing && existing !== dc) return existing;
    this.channels.set(dc.label, dc);
    dc.onopen = () => {
      if (dc.label === SERVICE_CHANNEL && this.holding && this.types.types.has('hold'))
        this.send('hold', true); // held before it opened
      this.emit('open', dc.label);
    };
    dc.onclose = () => this.emit('close', dc.label);
    dc.onmessage = (/** @type {MessageEvent} */ event) => {
      const message = this.types.decode(dc.label, event.data);
      if (message && this.holding && !THROUGH_A_HOLD.has(message.type)) {
        // Typing is stale by the time anyone decides: not kept.
        if (dc.label === SERVICE_CHANNEL && message.type !== 'typing' && this.kept.length < HELD_INCOMING)
          this.kept.push(message);
        this.emit('kept', this.kept.length);
        return;
      }
      if (message) this.emit('message', message);
      // Malformed, unknown or misplaced text on the service channel: ignored, but counted.
      else if (dc.label === SERVICE_CHANNEL) this.emit('ignored', dc.label);
    };
    return dc;
  }
}
