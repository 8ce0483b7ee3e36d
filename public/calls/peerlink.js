// The call role for one remote person: what a call needs on top of its connection
// (public/connection/connection.js: negotiation, candidates, channels, ICE restarts, the guard) —
// ringing and answering, the media it sends and receives, the video budget, and its
// state as a transition table (public/connection/linkstate.js).
//
// One PeerLink per person, kept by the CallController. A call opens a fresh `Connection`
// on it; when the call ends the link reports why (`ended`), returns to idle (`reset`) and
// discards that connection whole, ready for the next call with the same person.

import { onMessage, SERVICE_CHANNEL } from '../connection/channels.js';
import { Connection } from '../connection/connection.js';
import { rtcConfiguration } from '../verify/identity.js';
import { scaleFor, videoBudget } from './grouplogic.js';
import { LinkState } from '../connection/linkstate.js';
import { Role } from '../connection/role.js';

/**
 * @typedef {import('../connection/linkstate.js').LinkStateName} LinkStateName
 * @typedef {import('../connection/linkstate.js').LinkEvent} LinkEvent
 * @typedef {'audio' | 'video'} Kind
 * @typedef {{
 *   polite: boolean, iceServers: RTCIceServer[], stream: MediaStream,
 *   tracks: Record<Kind, MediaStreamTrack | null>,
 * }} CallSetup what one call on the link starts with
 */

/** ICE restarts: 'disconnected' often heals by itself within `afterMs`. */
const RECOVERY = { afterMs: 2500, retryMs: 8000 };
const GIVE_UP_MS = 45000;
const FULL_RESOLUTION_AFTER_MS = 1500;
/** @type {Kind[]} */
const KINDS = ['audio', 'video'];

/**
 * Events: `state` ({from, to, event}), `track` (remote stream), `message` ({type, data}:
 * from the peer over a data channel, docs/protocol.md §6), `remotemedia` ({audio, video},
 * set by a subscriber), `channel` (the service channel opened), `ended` ({reason, by,
 * from: the last state}).
 */
export class PeerLink extends Role {
  /**
   * @param {{peerId: string, peerName: string,
   *          messageTypes: import('../connection/channels.js').MessageRegistry,
   *          guard: import('../verify/guard.js').Guard, signal: (type: string, data: object) => void}} o
   * `signal` relays a message to this person through the server; `guard` checks every
   * connection of theirs (public/verify/guard.js)
   */
  constructor(o) {
    super();
    this.peerId = o.peerId;
    this.peerName = o.peerName;
    /** What a call's channels speak (the owner's registry, public/connection/channels.js). */
    this.messageTypes = o.messageTypes;
    this.guard = o.guard;
    /**
     * @type {string | null} the group call this link belongs to: its relays carry `call`
     * (docs/protocol.md §8)
     */
    this.callId = null;
    /** This call picks up one our page's reload cut (docs/protocol.md §7): its first offer says so. */
    this.rejoining = false;
    /** They hold this connection until their person confirms our device (public/calls/peermessages.js). */
    this.remoteHold = false;
    this.signal = (/** @type {string} */ type, /** @type {object} */ data) =>
      o.signal(type, this.callId ? { ...data, call: this.callId } : data);
    /** How much video we send them: less per member as a group call grows. */
    this.budget = videoBudget(1);
    /** Received-media figures, kept fresh by the call's meter (public/calls/meter.js). */
    this.meter = { framesDecoded: 0, bytesReceived: 0, audioLevel: 0 };
    /** The fast start is over: the picture may be as large as the budget allows. */
    this.fullSize = false;
    /** Their call rings while we are in another one (call waiting, set by the CallController). */
    this.waiting = false;
    this.linkState = new LinkState();
    this.linkState.on('state', (change) => this.emit('state', change));
    /** Listeners added with `during` hear this call only. */
    this.scope = new AbortController();
    /** @type {'outgoing' | 'incoming'} */
    this.direction = 'outgoing';
    this.localStream = new MediaStream();
    /** @type {Record<Kind, MediaStreamTrack | null>} */
    this.localTracks = { audio: null, video: null };
    this.remoteStream = new MediaStream();
    this.remoteMedia = { audio: true, video: true };
    this.connectedAt = 0;
    /** Outgoing: the callee's device is ringing (their `ringing` arrived). */
    this.alerting = false;
    /** @type {Partial<Record<Kind, RTCRtpTransceiver>>} */
    this.transceivers = {};
    /** @type {Promise<void> | undefined} incoming: the offer, applied while it rings */
    this.prepared = undefined;
  }

  /** @returns {LinkStateName} */
  get state() {
    return this.linkState.state;
  }

  /** @param {...LinkStateName} states */
  is(...states) {
    return this.linkState.is(...states);
  }

  /** A call is under way with this person (ringing included). */
  get active() {
    return this.linkState.active;
  }

  /** @param {LinkEvent} event */
  can(event) {
    return this.linkState.can(event);
  }

  /** @param {LinkEvent} event @param {string} [reason] */
  fire(event, reason) {
    return this.linkState.fire(event, reason);
  }

  /**
   * Listen for the rest of the current call only (a screen showing it): dropped when
   * the link returns to idle, so the next call with this person starts clean.
   * @param {string} type @param {(detail: any) => void} listener
   */
  during(type, listener) {
    this.on(type, listener, { signal: this.scope.signal });
  }

  /** Caller: idle -> calling, with a fresh connection. Then `start()`. @param {CallSetup} setup */
  dial(setup) {
    if (!this.fire('dial')) return false;
    this.open('outgoing', setup);
    return true;
  }

  /**
   * Callee: idle -> ringing; the offer is applied while it rings.
   * @param {string} sdp @param {CallSetup} setup
   */
  offered(sdp, setup) {
    if (!this.fire('offered')) return false;
    stage('offer-received');
    const connection = this.open('incoming', setup);
    this.prepared = connection
      .applyRemote({ type: 'offer', sdp })
      .then(() => (connection.closed ? undefined : this.prepareMedia(connection)))
      .catch(this.failure(connection));
    return true;
  }

  /**
   * A failure handler for work on `connection`: one that is gone (the call ended
   * meanwhile) fails quietly instead of ending the next call.
   * @param {Connection | null} [connection]
   */
  failure(connection = this.connection) {
    return (/** @type {unknown} */ error) => {
      if (connection && !connection.closed) this.fail(error);
    };
  }

  /** @param {'outgoing' | 'incoming'} direction @param {CallSetup} setup */
  open(direction, setup) {
    this.direction = direction;
    this.localStream = setup.stream;
    this.localTracks = setup.tracks;
    const remoteStream = (this.remoteStream = new MediaStream());
    this.remoteMedia = { audio: true, video: true };
    this.connectedAt = 0;
    this.alerting = false;
    this.transceivers = {};
    this.prepared = undefined;
    this.fullSize = false;
    this.meter = { framesDecoded: 0, bytesReceived: 0, audioLevel: 0 };
    this.connection?.close();
    const connection = (this.connection = new Connection({
      owner: this,
      guard: this.guard,
      // This device's lasting certificate (public/verify/identity.js): the same DTLS fingerprint every call.
      configuration: rtcConfiguration(setup.iceServers, { bundlePolicy: 'max-bundle' }),
      types: this.messageTypes,
      polite: setup.polite,
      recovery: RECOVERY,
      signal: (type, data) => this.signal(type, { ...data, target: this.peerId }),
    }));
    this.guard.exchangeCodes(connection);
    connection.on('track', (/** @type {MediaStreamTrack} */ track) => {
      if (!remoteStream.getTrackById(track.id)) remoteStream.addTrack(track);
      this.emit('track', remoteStream);
    });
    connection.on('connection', () => this.connectionChanged());
    // Messages are re-emitted for their subscribers (the chat panel, the remote media
    // state, a data-channel hang-up).
    connection.on('message', (message) => this.emit('message', message));
    connection.on('service', () => {
      this.mediaChanged();
      this.emit('channel');
    });
    connection.on('released', () => this.mediaChanged());
    // The other side closed its connection (tab closed, crash): nothing more will come.
    connection.on('close', (label) => {
      if (label === SERVICE_CHANNEL && this.is('connected', 'reconnecting')) this.end('gone', 'remote');
    });
    return connection;
  }

  /** The first video encoding: the fast start, within the budget. @param {MediaStreamTrack | null} track */
  firstEncoding(track) {
    const { maxBitrate, maxHeight } = this.budget;
    const scale = Math.max(fastStartScale(track), scaleFor(track?.getSettings().height || 0, maxHeight));
    return maxBitrate ? { scaleResolutionDownBy: scale, maxBitrate } : { scaleResolutionDownBy: scale };
  }

  /** Caller: send the invitation. */
  async start() {
    const connection = /** @type {Connection} */ (this.connection);
    for (const kind of KINDS) {
      const track = this.localTracks[kind];
      /** @type {RTCRtpTransceiverInit} */
      const init = { direction: 'sendrecv', streams: [this.localStream] };
      if (kind === 'video') init.sendEncodings = [this.firstEncoding(track)];
      const transceiver = (this.transceivers[kind] = connection.pc.addTransceiver(track || kind, init));
      connection.intended.set(transceiver.sender, track);
    }
    await this.offer();
    stage('offer-sent');
  }

  async accept() {
    const connection = this.connection;
    if (!connection || !this.fire('accept')) return;
    await this.prepared;
    if (connection.closed || !this.active) return; // ended (or replaced) while the offer was applied
    await connection.answer();
    stage('answer-sent');
    this.connectionChanged();
  }

  /**
   * Callee, while it rings: our tracks on the transceivers the offer made, so that
   * accepting is only the answer. Nothing is sent before that answer: without it there is
   * no transport to send on. @param {Connection} connection
   */
  async prepareMedia(connection) {
    const { transceivers, localTracks, localStream } = this;
    const ready = connection.pc.getTransceivers().map(async (transceiver) => {
      const kind = /** @type {Kind} */ (transceiver.receiver.track.kind);
      if (transceivers[kind] || transceiver.currentDirection === 'stopped') return;
      transceivers[kind] = transceiver;
      // Send both ways even without a track, so a camera found later needs no renegotiation.
      transceiver.direction = 'sendrecv';
      const { sender } = transceiver;
      await connection.sendTrack(sender, localTracks[kind]);
      sender.setStreams?.(localStream);
      const params = sender.getParameters();
      if (kind === 'video' && params.encodings?.[0]) {
        Object.assign(params.encodings[0], this.firstEncoding(localTracks.video));
        await sender.setParameters(params).catch(() => {});
      }
    });
    await Promise.all(ready);
  }

  /** A relayed message about this call. @param {string} type @param {any} data */
  async handle(type, data) {
    const connection = this.connection;
    if (!connection) return;
    try {
      if (type === 'icecandidate') await connection.addCandidate(data.candidate);
      else if (type === 'accept') await this.accepted(connection, data.sdp);
      else if (type === 'offer') await connection.receiveOffer(data.sdp); // an ICE restart, new media
    } catch (error) {
      this.failure(connection)(error);
    }
  }

  /** @param {Connection} connection @param {string} sdp */
  async accepted(connection, sdp) {
    if (connection.pc.signalingState !== 'have-local-offer') return; // a stale answer
    this.fire('answered'); // calling -> connecting; a renegotiation's answer changes no state
    stage('answer-received');
    await connection.receiveAnswer(sdp);
    this.connectionChanged(); // ICE may have finished while the candidates were added
  }

  async offer() {
    const rejoin = this.rejoining && this.is('calling') ? { rejoin: true } : {};
    await this.connection?.offer({ extra: rejoin });
  }

  connectionChanged() {
    const connection = this.connection;
    if (!connection || connection.closed || !this.is('connecting', 'connected', 'reconnecting')) return;
    const state = connection.state;
    if (state === 'connected') {
      this.timers.clear('giveUp');
      if (!this.connectedAt) {
        this.connectedAt = Date.now();
        this.timers.schedule('full', () => this.fullResolution(), FULL_RESOLUTION_AFTER_MS);
      }
      if (this.fire('connected')) stage('connected');
    } else if (state === 'disconnected' || state === 'failed') {
      this.fire('lost'); // connected -> reconnecting; still connecting stays connecting
      this.timers.start('giveUp', () => this.end('failed', 'local'), GIVE_UP_MS);
    }
  }

  /** New ICE credentials and candidates now (the connection restarts by itself after a loss). */
  restartIce(force = false) {
    if (this.active) return this.connection?.restartIce(force);
  }

  /** The device's network changed (`online`): our candidates may be stale. */
  networkChanged() {
    if (this.is('connected', 'reconnecting')) this.restartIce(true);
  }

  /** The picture at the size the call's budget allows (full size in a 1:1 call). */
  async fullResolution() {
    this.fullSize = true;
    await this.applyBudget();
  }

  /**
   * Send at most `budget` to this person (a group call grew or shrank).
   * @param {import('./grouplogic.js').VideoBudget} budget
   */
  setBudget(budget) {
    this.budget = budget;
    return this.applyBudget();
  }

  async applyBudget() {
    const sender = this.transceivers.video?.sender;
    const params = sender?.getParameters();
    const encoding = params?.encodings?.[0];
    if (!sender || !params || !encoding) return;
    const { maxBitrate, maxHeight } = this.budget;
    if (maxBitrate) encoding.maxBitrate = maxBitrate;
    else delete encoding.maxBitrate;
    // Until the fast start is over, never send more than it does.
    const height = this.localTracks.video?.getSettings().height || 0;
    const scale = scaleFor(height, maxHeight);
    encoding.scaleResolutionDownBy = this.fullSize
      ? scale
      : Math.max(scale, fastStartScale(this.localTracks.video));
    await sender.setParameters(params).catch(() => {});
  }

  /**
   * Handle messages of `type` from this person's call channels until the returned
   * function is called or `options.signal` aborts: the same call as a data link's.
   * @param {string} type @param {(data: any) => void} handler @param {{signal?: AbortSignal}} [options]
   * @returns {() => void}
   */
  subscribe(type, handler, options) {
    return onMessage(this, type, handler, options);
  }

  /**
   * Device switch or screen share: swap the outgoing track in place.
   * @param {Kind} kind @param {MediaStreamTrack | null} track
   */
  async replaceTrack(kind, track) {
    this.localTracks[kind] = track;
    const sender = this.transceivers[kind]?.sender;
    if (sender) await this.connection?.sendTrack(sender, track);
    this.mediaChanged();
  }

  /** Tell the peer whether our camera and mic are on, so it shows "muted", not silence. */
  mediaChanged() {
    const on = (/** @type {Kind} */ kind) => {
      const track = this.localTracks[kind];
      return Boolean(track?.enabled && track.readyState === 'live');
    };
    this.channels?.send('media', { audio: on('audio'), video: on('video') });
  }

  /** The callee's device rings: "Calling…" becomes "Ringing…" (same state, new stage). */
  remoteRinging() {
    if (!this.is('calling') || this.alerting) return;
    this.alerting = true;
    this.emit('state', { from: this.state, to: this.state, event: 'ringing' });
  }

  /**
   * Cancel (while calling) or hang up (in the call).
   * @param {string} reason what the peer is told @param {string} ending what we show, if different
   */
  hangup(reason = 'hangup', ending = reason) {
    if (!this.active) return;
    this.channels?.send('disconnect', { reason }); // arrives even while signalling is down
    this.signal('hangup', { target: this.peerId, reason });
    this.end(ending, 'local');
  }

  /** @param {'declined' | 'busy' | 'timeout' | 'left'} reason */
  decline(reason) {
    if (!this.active) return;
    this.signal('reject', { target: this.peerId, reason });
    this.end(reason, 'local');
  }

  /** @param {unknown} error */
  fail(error) {
    console.warn('call failed', error);
    this.hangup('error');
  }

  /**
   * The call is over: say why (`ended`), then back to idle without its connection.
   * @param {string} reason @param {'local' | 'remote'} by
   */
  end(reason, by) {
    const from = this.state;
    if (!this.fire('end', reason)) return;
    this.timers.clearAll();
    this.connection?.close();
    this.emit('ended', { reason, by, from });
    this.scope.abort(); // this call's screens stop listening before the link goes idle
    this.scope = new AbortController();
    this.connection = null;
    this.callId = null; // the next call with them starts as a 1:1 call
    this.rejoining = false;
    this.remoteHold = false;
    this.budget = videoBudget(1);
    this.fire('reset');
  }
}

/**
 * A moment in a call's setup, as a User Timing mark (`lan-call:offer-sent`...), so the
 * caller's and the callee's parts can be measured (bench/callsetup.py); costs nothing else.
 * @param {string} name
 */
function stage(name) {
  performance.mark(`lan-call:${name}`);
}

/**
 * Start a large camera picture at reduced resolution. WebRTC drops the first frames of a
 * stream too big for its starting bandwidth estimate (about 150 ms of black here); the
 * full picture follows a moment after connecting.
 * @param {MediaStreamTrack | null} track
 */
function fastStartScale(track) {
  const height = track?.getSettings().height || 0;
  return height > 480 ? height / 360 : 1;
}
