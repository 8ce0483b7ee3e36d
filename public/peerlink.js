// The link with one remote person: its RTCPeerConnection (offer/answer, trickle ICE, ICE
// restarts), its data channels, and its state as a transition table (public/linkstate.js).
//
// One PeerLink per person, kept by the CallController. A call opens a fresh
// RTCPeerConnection on it; when the call ends the link reports why (`ended`), returns to
// idle (`reset`) and drops that connection, ready for the next call with the same person.

import { onMessage, PeerChannels, SERVICE_CHANNEL } from './channels.js';
import { Emitter } from './events.js';
import { rtcConfiguration } from './identity.js';
import { scaleFor, videoBudget } from './grouplogic.js';
import { LinkState } from './linkstate.js';

/**
 * @typedef {import('./linkstate.js').LinkStateName} LinkStateName
 * @typedef {import('./linkstate.js').LinkEvent} LinkEvent
 * @typedef {'audio' | 'video'} Kind
 * @typedef {{
 *   polite: boolean, iceServers: RTCIceServer[], stream: MediaStream,
 *   tracks: Record<Kind, MediaStreamTrack | null>,
 * }} CallSetup what one call on the link starts with
 */

const RESTART_AFTER_MS = 2500; // 'disconnected' often heals by itself within this
const RESTART_RETRY_MS = 8000;
const GIVE_UP_MS = 45000;
const FULL_RESOLUTION_AFTER_MS = 1500;
const MAX_QUEUED_CANDIDATES = 256;
/** @type {Kind[]} */
const KINDS = ['audio', 'video'];

/**
 * Events: `state` ({from, to, event}), `track` (remote stream), `message` ({type, data}:
 * from the peer over a data channel, docs/protocol.md §6), `remotemedia` ({audio, video},
 * set by a subscriber), `channel` (the service channel opened), `ended` ({reason, by,
 * from: the last state}).
 */
export class PeerLink extends Emitter {
  /**
   * Set by public/verify.js: sees every remote description before it is applied.
   * @type {((link: PeerLink, sdp: string) => Promise<void>) | null}
   */
  static beforeRemote = null;

  /**
   * @param {{peerId: string, peerName: string, messageTypes: import('./channels.js').MessageRegistry,
   *          signal: (type: string, data: object) => void}} o
   * `signal` relays a message to this person through the server
   */
  constructor(o) {
    super();
    this.peerId = o.peerId;
    this.peerName = o.peerName;
    /** What a call's channels speak (the owner's registry, public/channels.js). */
    this.messageTypes = o.messageTypes;
    /** @type {string | null} the group call this link belongs to: its relays carry `call` (docs/protocol.md §8) */
    this.callId = null;
    /** This call picks up one our page's reload cut (docs/protocol.md §7): its first offer says so. */
    this.rejoining = false;
    /** They hold this connection until their person confirms our device (public/peermessages.js). */
    this.remoteHold = false;
    this.signal = (/** @type {string} */ type, /** @type {object} */ data) =>
      o.signal(type, this.callId ? { ...data, call: this.callId } : data);
    /** How much video we send them: less per member as a group call grows. */
    this.budget = videoBudget(1);
    /** Received-media figures, kept fresh by the call's meter (public/meter.js). */
    this.meter = { framesDecoded: 0, bytesReceived: 0, audioLevel: 0 };
    /** The fast start is over: the picture may be as large as the budget allows. */
    this.fullSize = false;
    /** Their call rings while we are in another one (call waiting, set by the CallController). */
    this.waiting = false;
    this.linkState = new LinkState();
    this.linkState.on('state', (change) => this.emit('state', change));
    /** Listeners added with `during` hear this call only. */
    this.scope = new AbortController();
    /** @type {RTCPeerConnection | null} the current call's, null while idle */
    this.pc = null;
    /** @type {PeerChannels | null} */
    this.channels = null;
    /** @type {'outgoing' | 'incoming'} */
    this.direction = 'outgoing';
    /** The polite side yields when both send an offer at once (docs/protocol.md §7: smaller id). */
    this.polite = false;
    this.localStream = new MediaStream();
    /** @type {Record<Kind, MediaStreamTrack | null>} */
    this.localTracks = { audio: null, video: null };
    this.remoteStream = new MediaStream();
    this.remoteMedia = { audio: true, video: true };
    /** @type {(RTCIceCandidateInit | null)[]} arrived before the remote description */
    this.pendingCandidates = [];
    this.remoteDescriptionSet = false;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.connectedAt = 0;
    /** Outgoing: the callee's device is ringing (their `ringing` arrived). */
    this.alerting = false;
    /** @type {Partial<Record<Kind, RTCRtpTransceiver>>} */
    this.transceivers = {};
    /** @type {Record<string, number>} */
    this.timers = {};
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

  /** Callee: idle -> ringing; the offer is applied while it rings. @param {string} sdp @param {CallSetup} setup */
  offered(sdp, setup) {
    if (!this.fire('offered')) return false;
    this.open('incoming', setup);
    const pc = this.pc;
    this.prepared = this.applyRemote({ type: 'offer', sdp }).catch(this.failure(pc));
    return true;
  }

  /**
   * A failure handler for work on `pc`: a connection that is gone (the call ended
   * meanwhile) fails quietly instead of ending the next call.
   * @param {RTCPeerConnection | null} [pc]
   */
  failure(pc = this.pc) {
    return (/** @type {unknown} */ error) => {
      if (pc && pc === this.pc) this.fail(error);
    };
  }

  /** @param {'outgoing' | 'incoming'} direction @param {CallSetup} setup */
  open(direction, setup) {
    this.direction = direction;
    this.polite = setup.polite;
    this.localStream = setup.stream;
    this.localTracks = setup.tracks;
    this.remoteStream = new MediaStream();
    this.remoteMedia = { audio: true, video: true };
    this.pendingCandidates = [];
    this.remoteDescriptionSet = false;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.connectedAt = 0;
    this.alerting = false;
    this.transceivers = {};
    this.prepared = undefined;
    this.fullSize = false;
    this.meter = { framesDecoded: 0, bytesReceived: 0, audioLevel: 0 };
    this.held = false; // verification (public/verify.js): nothing of ours is sent while held
    // This device's lasting certificate (public/identity.js): the same DTLS fingerprint every call.
    const pc = (this.pc = new RTCPeerConnection(rtcConfiguration(setup.iceServers, { bundlePolicy: 'max-bundle' })));
    pc.onicecandidate = ({ candidate }) =>
      pc === this.pc && this.signal('icecandidate', { target: this.peerId, candidate: candidate?.toJSON() ?? null });
    const remoteStream = this.remoteStream;
    pc.ontrack = ({ track }) => {
      if (pc !== this.pc) return;
      if (!remoteStream.getTrackById(track.id)) remoteStream.addTrack(track);
      this.emit('track', remoteStream);
    };
    pc.onconnectionstatechange = () => pc === this.pc && this.connectionChanged();
    // The negotiated service channel (id 0) and any named ones; messages are re-emitted
    // for their subscribers (the chat panel, the remote media state, a data-channel hang-up).
    const channels = (this.channels = new PeerChannels(pc, this.messageTypes));
    channels.on('message', (message) => channels === this.channels && this.emit('message', message));
    channels.on('open', (label) => {
      if (label !== SERVICE_CHANNEL || channels !== this.channels) return;
      this.mediaChanged();
      this.emit('channel');
    });
    // The other side closed its connection (tab closed, crash): nothing more will come.
    channels.on('close', (label) => {
      if (label === SERVICE_CHANNEL && channels === this.channels && this.is('connected', 'reconnecting')) {
        this.end('gone', 'remote');
      }
    });
  }

  /** The first video encoding: the fast start, within the budget. @param {MediaStreamTrack | null} track */
  firstEncoding(track) {
    const { maxBitrate, maxHeight } = this.budget;
    const scale = Math.max(fastStartScale(track), scaleFor(track?.getSettings().height || 0, maxHeight));
    return maxBitrate ? { scaleResolutionDownBy: scale, maxBitrate } : { scaleResolutionDownBy: scale };
  }

  /** Caller: send the invitation. */
  async start() {
    const pc = /** @type {RTCPeerConnection} */ (this.pc);
    for (const kind of KINDS) {
      const track = this.localTracks[kind];
      /** @type {RTCRtpTransceiverInit} */
      const init = { direction: 'sendrecv', streams: [this.localStream] };
      if (kind === 'video') init.sendEncodings = [this.firstEncoding(track)];
      this.transceivers[kind] = pc.addTransceiver(track || kind, init);
    }
    await this.offer();
  }

  async accept() {
    const pc = this.pc;
    if (!pc || !this.fire('accept')) return;
    await this.prepared;
    if (pc !== this.pc || !this.active) return; // ended (or replaced) while the offer was applied
    const { transceivers, localTracks, localStream } = this;
    for (const transceiver of pc.getTransceivers()) {
      const kind = /** @type {Kind} */ (transceiver.receiver.track.kind);
      if (transceivers[kind] || transceiver.currentDirection === 'stopped') continue;
      transceivers[kind] = transceiver;
      // Send both ways even without a track, so a camera found later needs no renegotiation.
      transceiver.direction = 'sendrecv';
      const { sender } = transceiver;
      await sender.replaceTrack(this.held ? null : localTracks[kind]);
      sender.setStreams?.(localStream);
      const params = sender.getParameters();
      if (kind === 'video' && params.encodings?.[0]) {
        Object.assign(params.encodings[0], this.firstEncoding(localTracks.video));
        await sender.setParameters(params).catch(() => {});
      }
    }
    if (pc !== this.pc) return;
    await this.answer();
    if (pc === this.pc) this.connectionChanged();
  }

  /** A relayed message about this call. @param {string} type @param {any} data */
  async handle(type, data) {
    const pc = this.pc;
    try {
      if (type === 'icecandidate') await this.addCandidate(data.candidate);
      else if (type === 'accept') await this.accepted(data.sdp);
      else if (type === 'offer') await this.renegotiate(data.sdp);
    } catch (error) {
      this.failure(pc)(error);
    }
  }

  /** @param {string} sdp */
  async accepted(sdp) {
    if (this.pc?.signalingState !== 'have-local-offer') return; // a stale answer
    this.fire('answered'); // calling -> connecting; a renegotiation's answer changes no state
    await this.applyRemote({ type: 'answer', sdp });
    this.connectionChanged(); // ICE may have finished while the candidates were added
  }

  /**
   * An offer from the peer already in the call (ICE restart, new media) is answered
   * without ringing. When both offer at once, the impolite side ignores the peer's.
   * @param {string} sdp
   */
  async renegotiate(sdp) {
    const pc = /** @type {RTCPeerConnection} */ (this.pc);
    this.ignoreOffer = !this.polite && (this.makingOffer || pc.signalingState !== 'stable');
    if (this.ignoreOffer) return;
    await this.applyRemote({ type: 'offer', sdp }); // rolls back our own offer, if any
    if (pc === this.pc) await this.answer();
  }

  /** @param {RTCSessionDescriptionInit} description */
  async applyRemote(description) {
    const pc = /** @type {RTCPeerConnection} */ (this.pc);
    // Verification sees their fingerprint first, and may hold the link before media can flow.
    await PeerLink.beforeRemote?.(this, description.sdp || '');
    if (pc !== this.pc) return;
    await pc.setRemoteDescription(description);
    if (pc !== this.pc) return;
    this.remoteDescriptionSet = true;
    for (const candidate of this.pendingCandidates.splice(0)) await this.addCandidate(candidate);
  }

  /** @param {RTCIceCandidateInit | null} candidate null: end of candidates */
  async addCandidate(candidate) {
    if (!this.pc) return;
    if (!this.remoteDescriptionSet) {
      if (this.pendingCandidates.length < MAX_QUEUED_CANDIDATES) this.pendingCandidates.push(candidate);
      return;
    }
    // Candidates of an ignored offer or an abandoned attempt do not fit: harmless.
    await this.pc.addIceCandidate(candidate || undefined).catch(() => {});
  }

  async offer(iceRestart = false) {
    const pc = /** @type {RTCPeerConnection} */ (this.pc);
    this.makingOffer = true;
    try {
      await pc.setLocalDescription(await pc.createOffer({ iceRestart }));
      const rejoin = this.rejoining && this.is('calling') ? { rejoin: true } : {};
      if (pc === this.pc) this.signal('offer', { type: 'offer', sdp: pc.localDescription?.sdp, target: this.peerId, ...rejoin });
    } finally {
      if (pc === this.pc) this.makingOffer = false;
    }
  }

  async answer() {
    const pc = /** @type {RTCPeerConnection} */ (this.pc);
    await pc.setLocalDescription(await pc.createAnswer());
    if (pc === this.pc) this.signal('accept', { type: 'answer', sdp: pc.localDescription?.sdp, target: this.peerId });
  }

  connectionChanged() {
    const pc = this.pc;
    if (!pc || !this.is('connecting', 'connected', 'reconnecting')) return;
    const connection = pc.connectionState;
    if (connection === 'connected') {
      this.clearTimers('restart', 'giveUp');
      if (!this.connectedAt) {
        this.connectedAt = Date.now();
        this.timers.full = setTimeout(() => this.fullResolution(), FULL_RESOLUTION_AFTER_MS);
      }
      this.fire('connected');
    } else if (connection === 'disconnected' || connection === 'failed') {
      this.fire('lost'); // connected -> reconnecting; still connecting stays connecting
      this.timers.giveUp ??= setTimeout(() => this.end('failed', 'local'), GIVE_UP_MS);
      if (connection === 'failed') this.restartIce();
      else this.schedule('restart', () => this.restartIce(), RESTART_AFTER_MS);
    }
  }

  /** New ICE credentials and candidates, over the (possibly resumed) signalling socket. */
  async restartIce(force = false) {
    const pc = this.pc;
    if (!pc || !this.active || (!force && pc.connectionState === 'connected')) return;
    try {
      if (pc.signalingState === 'have-local-offer') {
        await pc.setLocalDescription({ type: 'rollback' }); // the last try got no answer
      }
      if (pc === this.pc && pc.signalingState === 'stable') await this.offer(true);
    } catch (error) {
      console.debug('ICE restart failed', error);
    }
    if (pc === this.pc) this.schedule('restart', () => this.restartIce(), RESTART_RETRY_MS);
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
    encoding.scaleResolutionDownBy = this.fullSize ? scale : Math.max(scale, fastStartScale(this.localTracks.video));
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
    await this.transceivers[kind]?.sender.replaceTrack(this.held ? null : track);
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
    this.clearTimers(...Object.keys(this.timers));
    this.pc?.close();
    this.emit('ended', { reason, by, from });
    this.scope.abort(); // this call's screens stop listening before the link goes idle
    this.scope = new AbortController();
    this.pc = null;
    this.channels = null;
    this.callId = null; // the next call with them starts as a 1:1 call
    this.rejoining = false;
    this.remoteHold = false;
    this.budget = videoBudget(1);
    this.fire('reset');
  }

  /** @param {string} name @param {() => void} action @param {number} ms */
  schedule(name, action, ms) {
    clearTimeout(this.timers[name]);
    this.timers[name] = setTimeout(action, ms);
  }

  /** @param {string[]} names */
  clearTimers(...names) {
    for (const name of names) {
      clearTimeout(this.timers[name]);
      delete this.timers[name];
    }
  }
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
