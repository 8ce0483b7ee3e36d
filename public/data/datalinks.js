// Data links (docs/protocol.md §9): the peer data API. For any listed person, a data-only
// RTCPeerConnection (no camera, no microphone) opened on first use, answered without
// ringing, closed after IDLE_CLOSE_MS with nothing sent or received and no named channel
// open, and reopened transparently on the next use. It is separate from any call with
// that person, so a file transfer survives a call starting or ending.
//
// Per person (`dataLinks.peer(id)`, a DataLink):
//   send(type, data)                   -> Promise<void>  a registered message type, once the link is open
//   request(type, data, {timeoutMs})   -> Promise<any>   their handler's answer, or a DataLinkError
//   subscribe(type, handler)           -> unsubscribe()  messages and requests from this person
//   channel(label, options)            -> Promise<RTCDataChannel>  a named channel, open
//   close()                                              end the link now
//   events: `state` ({from, to, event}), `open`, `ended` ({reason, by}),
//           `channel` ({label, channel}: a named channel the other side opened)
// For everyone (`dataLinks`): subscribe(type, handler), define(type, check), send /
// request / channel by peer id, and the same events with `peerId` added.
//
// A handler gets `(data, {peerId, peerName, link})`. For a request, what it returns (or
// the promise's value) is the answer; what it throws goes back as an error (`failed`,
// with its message). Message types are declared in the channels.js registry (`define`);
// a request whose type nobody here answers is answered `unknown-type` at once, and one
// whose data fails the type's check `bad-request`. Malformed messages are counted
// (`malformed`) and ignored: the link stays up.

import { callMessages, SERVICE_CHANNEL } from '../connection/channels.js';
import { Connection, isPolite } from '../connection/connection.js';
import { DataLinkError, isLine, isRequest, isResponse, OfferBudget, Requests } from './datalogic.js';
import { Emitter } from '../core/events.js';
import { rtcConfiguration } from '../verify/identity.js';
import { LinkState } from '../connection/linkstate.js';
import { Role } from '../connection/role.js';
import { DATA_LINK, ERROR } from '../core/protocol.js';

/** Server refusals that end a data link being opened. @type {ReadonlySet<string>} */
const LINK_REFUSALS = new Set([ERROR.PEER_AWAY, ERROR.UNDELIVERED, ERROR.UNKNOWN_PEER, ERROR.UNSUPPORTED]);

export { DataLinkError } from './datalogic.js';

export const IDLE_CLOSE_MS = 60000;
export const OPEN_TIMEOUT_MS = 10000; // an offer nobody answers: unreachable
export const REQUEST_TIMEOUT_MS = 10000;
const LOST_GIVE_UP_MS = 15000; // ICE disconnected this long: the link is over (the next use reopens)
const MAX_QUEUED = 256; // sends waiting for the link to open

/**
 * @typedef {{peerId: string, peerName: string, link: DataLink}} From who a message came from
 * @typedef {(data: any, from: From) => unknown} Handler
 * @typedef {{get(id: string): {id: string, name: string} | undefined}} People who is listed now
 */

/**
 * What a data link's service channel speaks: a call's types (§6: chat, typing, the hold,
 * the code's exchange) and the data-link messages (§9); features add theirs
 * (`DataLinks.define`). A fresh registry for each `DataLinks`.
 */
export function dataMessages() {
  return callMessages()
    .define('request', isRequest)
    .define('response', isResponse)
    .define('message', isLine)
    .define(
      'ping',
      /** @returns {data is {t: number}} */
      (data) =>
        typeof data === 'object' && data !== null && typeof (/** @type {any} */ (data).t) === 'number',
    );
}

/** Handlers by message type, for one person or for everyone. */
class Subscriptions {
  constructor() {
    /** @type {Map<string, Set<Handler>>} */
    this.byType = new Map();
  }

  /** @param {string} type @param {Handler} handler */
  add(type, handler) {
    let set = this.byType.get(type);
    if (!set) this.byType.set(type, (set = new Set()));
    set.add(handler);
    return () => {
      set.delete(handler);
    };
  }

  /** @param {string} type */
  get(type) {
    return [...(this.byType.get(type) || [])];
  }
}

/**
 * The data role for one person: what a data link needs on top of its connection
 * (public/connection/connection.js) — opening on first use without ringing, a queue until it is
 * open, requests and their answers, subscriptions, and closing when idle.
 */
export class DataLink extends Role {
  /**
   * @param {{
   *   peerId: string, peerName: string, me: () => string,
   *   signal: (type: string, data: object) => void, iceServers: () => RTCIceServer[],
   *   everyone: Subscriptions, types: import('../connection/channels.js').MessageRegistry,
   *   guard: import('../verify/guard.js').Guard, idleMs?: number, openTimeoutMs?: number,
   * }} o `guard` checks every connection of theirs (public/verify/guard.js)
   */
  constructor(o) {
    super();
    this.peerId = o.peerId;
    this.peerName = o.peerName;
    this.me = o.me;
    this.signalRaw = o.signal;
    this.iceServers = o.iceServers;
    this.everyone = o.everyone;
    this.types = o.types;
    this.guard = o.guard;
    this.idleMs = o.idleMs ?? IDLE_CLOSE_MS;
    this.openTimeoutMs = o.openTimeoutMs ?? OPEN_TIMEOUT_MS;
    this.linkState = new LinkState();
    this.linkState.on('state', (change) => this.emit('state', change));
    this.own = new Subscriptions();
    this.requests = new Requests();
    /** Their side holds this connection for its person's decision (a `hold` message). */
    this.remoteHold = false;
    /** @type {{type: string, data: unknown, resolve: () => void, reject: (e: Error) => void}[]} */
    this.queue = [];
    /** We sent the offer of the current connection (and have no answer yet while connecting). */
    this.offering = false;
    /** Malformed or unknown messages received (ignored; the link stays up). */
    this.malformed = 0;
  }

  /** @returns {import('../connection/linkstate.js').LinkStateName} */
  get state() {
    return this.linkState.state;
  }

  /** The service channel is open: sends go out at once. */
  get open() {
    return this.linkState.is('connected', 'reconnecting') && Boolean(this.channels?.isOpen());
  }

  // --- the API ------------------------------------------------------------------------

  /**
   * Send a message of a registered type. Opens the link if needed; resolves once the
   * message is handed to the data channel, rejects (DataLinkError) if the link cannot
   * be opened or closes first.
   * @param {string} type @param {unknown} [data]
   * @returns {Promise<void>}
   */
  send(type, data) {
    this.types.encode(type, data); // an unknown type or bad data throws here, at the caller
    if (this.held) return Promise.reject(this.heldError());
    if (this.open && this.channels?.send(type, data)) {
      this.touch();
      return Promise.resolve();
    }
    if (this.queue.length >= MAX_QUEUED) {
      return Promise.reject(
        new DataLinkError('unreachable', `Too many messages are waiting for ${this.peerName}.`),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ type, data, resolve, reject });
      this.connect();
    });
  }

  /**
   * Ask them something: resolves with their handler's answer, rejects with a
   * DataLinkError (`timeout` after `timeoutMs`, `unknown-type`, `bad-request`, `failed`,
   * `unreachable`, `closed`...). The link stays up whatever happens.
   * @param {string} type a registered type @param {unknown} [data]
   * @param {{timeoutMs?: number}} [options]
   */
  async request(type, data, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    this.types.encode(type, data);
    const seconds = Math.round(timeoutMs / 100) / 10;
    const { id, promise } = this.requests.create(
      type,
      timeoutMs,
      `${this.peerName} didn’t answer (“${type}”) within ${seconds} s.`,
    );
    this.send('request', data === undefined ? { id, type } : { id, type, data }).catch((error) =>
      this.requests.fail(id, error),
    );
    try {
      return await promise;
    } finally {
      this.touch();
    }
  }

  /**
   * Handle messages (and requests) of `type` from this person. Returns unsubscribe.
   * @param {string} type @param {Handler} handler
   */
  subscribe(type, handler) {
    return this.own.add(type, handler);
  }

  /**
   * A named data channel, opened on demand (the other side gets a `channel` event) and
   * resolved once open. It keeps the link from closing while it is open; close it when
   * done. Its messages are the caller's own (binary or text): the registry never sees them.
   * @param {string} label not "chat" @param {RTCDataChannelInit} [options] default ordered, reliable
   * @returns {Promise<RTCDataChannel>}
   */
  async channel(label, options = { ordered: true }) {
    if (!label || label === SERVICE_CHANNEL) throw new Error(`"${label}" is not a channel name to open`);
    await this.ready();
    await this.decided(); // held (public/verify/guard.js): a file waits for the user's choice
    const channels = this.channels;
    if (!channels) throw this.errorFor('closed');
    const dc = channels.open(label, options);
    if (dc.readyState === 'open') return dc;
    return new Promise((resolve, reject) => {
      const done = () => {
        dc.removeEventListener('open', opened);
        dc.removeEventListener('close', closed);
      };
      const opened = () => {
        done();
        resolve(dc);
      };
      const closed = () => {
        done();
        reject(new DataLinkError('closed', `The channel to ${this.peerName} closed before it opened.`));
      };
      dc.addEventListener('open', opened);
      dc.addEventListener('close', closed);
    });
  }

  /** Resolves once the link is open (opening it if needed). */
  ready() {
    if (this.open) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onOpen = () => {
        this.removeEventListener('open', onOpen);
        this.removeEventListener('ended', onEnd);
        resolve(undefined);
      };
      const onEnd = (/** @type {Event} */ event) => {
        this.removeEventListener('open', onOpen);
        this.removeEventListener('ended', onEnd);
        reject(/** @type {CustomEvent} */ (event).detail.error);
      };
      this.addEventListener('open', onOpen);
      this.addEventListener('ended', onEnd);
      this.connect();
    });
  }

  /** Resolves once this connection is not held (at once if it is not); rejects if the link ends first. */
  decided() {
    if (!this.held) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        this.removeEventListener('released', onReleased);
        this.removeEventListener('ended', onEnd);
      };
      const onReleased = () => (done(), resolve(undefined));
      const onEnd = (/** @type {Event} */ event) => (
        done(),
        reject(/** @type {CustomEvent} */ (event).detail.error)
      );
      this.addEventListener('released', onReleased);
      this.addEventListener('ended', onEnd);
    });
  }

  /**
   * They hold this connection until their person confirms our device: our requests wait
   * instead of timing out, and the conversation says so (issue 19, 5). @param {boolean} on
   */
  remoteHeld(on) {
    if (this.remoteHold === on) return;
    this.remoteHold = on;
    this.requests.hold(on);
    this.emit('remote-hold', on);
  }

  /** Why a message is refused while held: the conversation view shows the choice. */
  heldError() {
    return new DataLinkError(
      'held',
      `Not sent: this may not be ${this.peerName}’s verified device. ` +
        'Choose “It’s a new device” or “Not them” first.',
    );
  }

  /** End the link now (the other side hears `hangup` with `link:"data"`). @param {string} [reason] */
  close(reason = 'closed') {
    if (!this.linkState.active) return;
    this.signal('hangup', { target: this.peerId, reason });
    this.end(reason, 'local');
  }

  // --- opening --------------------------------------------------------------------------

  /** @param {string} type @param {object} data */
  signal(type, data) {
    this.signalRaw(type, { ...data, link: DATA_LINK });
  }

  /** Open the link if it is idle (we offer). */
  connect() {
    if (!this.linkState.can('link')) return;
    this.linkState.fire('link');
    this.offering = true;
    const connection = this.fresh();
    this.timers.schedule('open', () => this.end('unreachable', 'local'), this.openTimeoutMs);
    connection.offer().catch((error) => this.failed(connection, error));
  }

  /** A new connection with the service channel; the old one, if any, is discarded. */
  fresh() {
    this.connection?.close();
    if (this.remoteHold) this.remoteHeld(false);
    const connection = (this.connection = new Connection({
      owner: this,
      guard: this.guard, // a new connection is checked again
      // This device's lasting certificate (public/verify/identity.js), as for calls.
      configuration: rtcConfiguration(this.iceServers(), { bundlePolicy: 'max-bundle' }),
      types: this.types,
      polite: isPolite(this.me(), this.peerId),
      signal: (type, data) => this.signal(type, { ...data, target: this.peerId }),
    }));
    connection.on('connection', () => this.connectionChanged());
    connection.on('open', (label) => (label === SERVICE_CHANNEL ? this.serviceOpen() : this.touch()));
    connection.on('close', (label) => {
      // The other side closed its connection (tab closed, idle close crossed): over.
      if (label === SERVICE_CHANNEL) this.end('closed', 'remote');
      else this.touch(); // a transfer channel closed: idle counting starts now
    });
    connection.on('message', (message) => this.received(message));
    connection.on('kept', (count) => this.emit('kept', count));
    connection.on('ignored', () => {
      this.malformed += 1;
      this.touch();
    });
    connection.on('channel', (detail) => this.emit('channel', detail));
    connection.on('released', () => this.emit('released')); // files waiting for the choice go on
    return connection;
  }

  serviceOpen() {
    this.timers.clear('open', 'lost');
    this.linkState.fire('connected');
    this.touch();
    this.emit('open');
    for (const item of this.queue.splice(0)) {
      if (this.held) item.reject(this.heldError());
      else if (this.channels?.send(item.type, item.data)) item.resolve();
      else item.reject(new DataLinkError('closed', `The link to ${this.peerName} closed.`));
    }
  }

  connectionChanged() {
    const connection = this.connection?.state;
    if (connection === 'connected' && this.linkState.is('reconnecting')) {
      this.timers.clear('lost');
      this.linkState.fire('connected');
    } else if (connection === 'disconnected') {
      this.linkState.fire('lost');
      this.timers.start('lost', () => this.end('failed', 'local'), LOST_GIVE_UP_MS);
    } else if (connection === 'failed') {
      this.end('failed', 'local');
    }
  }

  // --- signalling relays (link:"data") ---------------------------------------------------

  /** A relay with `link:"data"` from this person. @param {string} type @param {any} data */
  async handle(type, data) {
    const connection = this.connection;
    try {
      if (type === 'offer' && typeof data.sdp === 'string') await this.offered(data.sdp);
      else if (type === 'accept' && typeof data.sdp === 'string') await this.answered(data.sdp);
      else if (type === 'icecandidate') await this.addCandidate(data.candidate ?? null);
      else if (type === 'hangup' || type === 'reject') this.end(String(data.reason || 'closed'), 'remote');
    } catch (error) {
      this.failed(connection, error);
    }
  }

  /** Their offer: answered at once, no ringing. @param {string} sdp */
  async offered(sdp) {
    const current = this.connection;
    if (
      this.linkState.is('connecting') &&
      this.offering &&
      current?.pc.signalingState === 'have-local-offer'
    ) {
      // Both opened at once: the polite side (public/connection/connection.js) takes theirs on a fresh
      // connection; the other ignores it and waits for the answer to its own.
      if (!current.polite) return;
    } else if (this.linkState.is('ended')) return;
    // Otherwise a fresh offer on a live link means their side started over (a reload): take it.
    if (this.linkState.is('idle')) this.linkState.fire('link');
    this.offering = false;
    const connection = this.fresh();
    this.timers.schedule('open', () => this.end('unreachable', 'local'), this.openTimeoutMs);
    await connection.receiveOffer(sdp);
  }

  /** @param {string} sdp */
  async answered(sdp) {
    await this.connection?.receiveAnswer(sdp); // a stale one, or one after we yielded, is ignored
  }

  /** @param {RTCIceCandidateInit | null} candidate */
  async addCandidate(candidate) {
    await this.connection?.addCandidate(candidate);
  }

  /** @param {Connection | null} connection @param {unknown} error */
  failed(connection, error) {
    if (!connection || connection.closed || connection !== this.connection) return;
    console.warn('data link failed', error);
    this.close('error');
  }

  // --- receiving ------------------------------------------------------------------------

  /** @param {{type: string, data: any}} message */
  received({ type, data }) {
    this.touch();
    if (type === 'hold') return this.remoteHeld(data === true);
    if (type === 'response') {
      if (!this.requests.settle(data, this.peerName)) this.malformed += 1; // late or made up
      return;
    }
    if (type === 'request') return this.answer(data);
    const from = this.from();
    for (const handler of this.handlers(type)) {
      try {
        handler(data, from);
      } catch (error) {
        console.warn(`data link: a ${type} handler failed`, error);
      }
    }
  }

  /** @param {{id: string, type: string, data?: unknown}} request */
  async answer({ id, type, data }) {
    const reply = (/** @type {object} */ body) => this.connection?.send('response', { id, ...body });
    const handler = this.handlers(type)[0];
    if (!handler || !this.types.types.has(type)) {
      return reply({
        error: { code: 'unknown-type', message: `This app doesn’t answer “${type}” requests.` },
      });
    }
    if (!this.types.types.get(type)?.check(data)) {
      return reply({ error: { code: 'bad-request', message: `The “${type}” request was malformed.` } });
    }
    try {
      const result = await handler(data, this.from());
      reply(result === undefined ? {} : { data: result });
    } catch (error) {
      const message =
        error instanceof Error && error.message ? error.message : `The “${type}” request failed.`;
      reply({ error: { code: 'failed', message } });
    }
  }

  /** @param {string} type */
  handlers(type) {
    return [...this.own.get(type), ...this.everyone.get(type)];
  }

  /** @returns {From} */
  from() {
    return { peerId: this.peerId, peerName: this.peerName, link: this };
  }

  // --- idling and ending ------------------------------------------------------------------

  /** Something was sent or received: the idle countdown starts again. */
  touch() {
    if (!this.linkState.active) return;
    this.timers.schedule('idle', () => this.idle(), this.idleMs);
  }

  idle() {
    const channels = this.channels;
    const named = channels
      ? [...channels.channels.values()].some((dc) => dc.label !== SERVICE_CHANNEL && dc.readyState === 'open')
      : false;
    if (named || this.requests.size || this.queue.length) return this.touch();
    this.close('idle');
  }

  /**
   * The link is over: say why (`ended`), fail what waits, back to idle without a
   * connection. The next use opens a new one.
   * @param {string} reason @param {'local' | 'remote'} by
   */
  end(reason, by) {
    if (!this.linkState.fire('end', reason)) return;
    this.timers.clearAll();
    this.connection?.close();
    this.connection = null;
    this.offering = false;
    const error = this.errorFor(reason);
    for (const item of this.queue.splice(0)) item.reject(error);
    this.requests.failAll(error);
    this.emit('ended', { reason, by, error });
    this.linkState.fire('reset');
  }

  /** @param {string} reason */
  errorFor(reason) {
    const who = this.peerName;
    /** @type {Record<string, [string, string]>} */
    const words = {
      unreachable: ['unreachable', `${who} isn’t reachable right now.`],
      [ERROR.PEER_AWAY]: ['unreachable', `${who} isn’t reachable right now.`],
      undelivered: ['unreachable', `${who} isn’t reachable right now.`],
      [ERROR.UNSUPPORTED]: ['unsupported', `${who}’s app can’t receive messages.`],
      [ERROR.UNKNOWN_PEER]: ['gone', `${who} is no longer here.`],
      gone: ['gone', `${who} is no longer here.`],
      failed: ['closed', `Lost the connection to ${who}.`],
      error: ['closed', `The connection to ${who} failed.`],
    };
    const [code, message] = words[reason] || ['closed', `The link to ${who} closed.`];
    return new DataLinkError(code, message);
  }
}

/**
 * Every person's data link, made on first use. Events (each with `peerId`): `state`
 * ({peerId, from, to, event}), `open` ({peerId}), `ended` ({peerId, reason, by, error}),
 * `channel` ({peerId, label, channel, link}).
 */
export class DataLinks extends Emitter {
  /**
   * @param {import('../core/signalling.js').Signalling} signalling @param {People} people
   * @param {import('../verify/guard.js').Guard} guard checks every connection (public/verify/guard.js)
   * @param {{idleMs?: number, openTimeoutMs?: number,
   *          types?: import('../connection/channels.js').MessageRegistry}} [options]
   */
  constructor(signalling, people, guard, options = {}) {
    super();
    if (!guard) throw new TypeError('Data links need the verification guard.');
    this.signalling = signalling;
    this.people = people;
    this.guard = guard;
    this.options = options;
    /** @type {Map<string, DataLink>} */
    this.links = new Map();
    /** Offers answered without a click, per person (a flood builds no connections). */
    this.offerBudget = new OfferBudget();
    /** What every data link here speaks (one registry, passed to each link). */
    this.types = options.types ?? dataMessages();
    /** @type {Subscriptions} */
    this.everyone = new Subscriptions();
    // Built in: `ping` answers with what it was sent (a round trip, for tools and tests).
    this.subscribe('ping', (data) => data);
  }

  /** The data link with this person (made on first use; opened on first send). @param {string} peerId */
  peer(peerId) {
    const known = this.links.get(peerId);
    const name = this.people.get(peerId)?.name;
    if (known) {
      if (name) known.peerName = name;
      return known;
    }
    const link = new DataLink({
      peerId,
      peerName: name || 'Someone',
      me: () => this.signalling.id || '',
      signal: (type, data) => {
        const me = this.signalling.id;
        this.signalling.send(type, { ...data, [type === 'icecandidate' ? 'id' : 'source']: me });
      },
      iceServers: () => this.signalling.config?.iceServers || [],
      everyone: this.everyone,
      types: this.types,
      guard: this.guard,
      idleMs: this.options.idleMs,
      openTimeoutMs: this.options.openTimeoutMs,
    });
    this.links.set(peerId, link);
    link.on('state', (change) => this.emit('state', { peerId, ...change }));
    link.on('open', () => this.emit('open', { peerId }));
    link.on('remote-hold', (on) => this.emit('remote-hold', { peerId, on }));
    link.on('kept', (count) => this.emit('kept', { peerId, count }));
    link.on('ended', (ending) => this.emit('ended', { peerId, ...ending }));
    link.on('channel', (detail) => this.emit('channel', { peerId, link, ...detail }));
    return link;
  }

  /** @param {string} peerId @param {string} type @param {unknown} [data] */
  send(peerId, type, data) {
    return this.reachable(peerId)?.send(type, data) ?? Promise.reject(this.notHere(peerId));
  }

  /**
   * @param {string} peerId @param {string} type @param {unknown} [data]
   * @param {{timeoutMs?: number}} [options]
   */
  request(peerId, type, data, options) {
    return this.reachable(peerId)?.request(type, data, options) ?? Promise.reject(this.notHere(peerId));
  }

  /** @param {string} peerId @param {string} label @param {RTCDataChannelInit} [options] */
  channel(peerId, label, options) {
    return this.reachable(peerId)?.channel(label, options) ?? Promise.reject(this.notHere(peerId));
  }

  /**
   * Handle `type` from anyone (after that person's own handlers). Returns unsubscribe.
   * @param {string} type @param {Handler} handler
   */
  subscribe(type, handler) {
    return this.everyone.add(type, handler);
  }

  /**
   * Declare a message type (docs/protocol.md §9: a feature's own types), unless it is
   * declared already.
   * @param {string} type @param {(data: unknown) => boolean} check @param {{channel?: string}} [options]
   */
  define(type, check, options) {
    if (!this.types.types.has(type))
      this.types.define(type, /** @type {(data: unknown) => data is any} */ (check), options);
    return this;
  }

  /** The link, if the person can be reached through the server at all. @param {string} peerId */
  reachable(peerId) {
    return this.people.get(peerId) || this.links.get(peerId)?.linkState.active ? this.peer(peerId) : null;
  }

  /** @param {string} peerId */
  notHere(peerId) {
    const name = this.links.get(peerId)?.peerName;
    return new DataLinkError(
      'gone',
      name ? `${name} is not here right now.` : 'They are not here right now.',
    );
  }

  /** A relay with `link:"data"` (docs/protocol.md §9). @param {string} type @param {any} data */
  handle(type, data) {
    const from = type === 'icecandidate' ? data.id : data.source;
    if (typeof from !== 'string' || from === this.signalling.id) return;
    const known = this.links.get(from);
    if (type !== 'offer' && !known?.linkState.active) return; // about a link that is over
    if (type === 'offer' && !this.offerBudget.take(from, Date.now())) return; // a flood: not answered
    (known || this.peer(from)).handle(type, data);
  }

  /**
   * A server `error` about a data-link relay (`peer-away`, `undelivered`, `unknown-peer`,
   * `unsupported` for our offer): the link being opened fails at once, with words.
   * Returns whether it was about one.
   * @param {{code: string, ref?: string, target?: string}} error
   */
  serverError({ code, ref, target }) {
    if (!LINK_REFUSALS.has(code)) return false;
    if (!['offer', 'accept', 'icecandidate'].includes(ref || '')) return false;
    const opening = [...this.links.values()].filter((link) => link.linkState.is('connecting') && !link.open);
    // `unsupported` names no target: the oldest link being opened is the one refused.
    const link = target ? opening.find((l) => l.peerId === target) : opening[0];
    if (!link) return false;
    if (ref === 'offer' || code !== ERROR.PEER_AWAY) {
      link.signal('hangup', { target: link.peerId, reason: 'cancelled' }); // held with the offer
      link.end(code, 'local');
    }
    return true;
  }

  /** Someone was renamed or left. @param {{id: string, name: string, remove?: boolean}} person */
  personChanged(person) {
    const link = this.links.get(person.id);
    if (!link) return;
    if (!person.remove) link.peerName = person.name;
    else {
      link.end('gone', 'remote');
      this.links.delete(person.id);
    }
  }

  /** The page is going away: every open link is closed (the others hear it at once). */
  closeAll() {
    for (const link of this.links.values()) link.close('left');
  }
}
