// One RTCPeerConnection and everything that goes with it, for whichever role owns it: a
// call (public/calls/peerlink.js) or a data link (public/data/datalinks.js), later the SFU.
//
// It holds the negotiation (offer, answer, the one glare rule), the candidate queue, the
// data channels (public/connection/channels.js), the verification guard (public/verify/guard.js: a required
// argument, consulted before every remote description), ICE restarts when the role asks
// for them, and the connection's timers. A role never reuses one: when a connection is
// replaced or ends, `close()` discards it whole, and a closed connection emits nothing and
// signals nothing more, so no role has to check whether a callback is about the
// connection it has now.
//
// Events: `track` (a remote MediaStreamTrack), `connection` (RTCPeerConnectionState),
// `service` (the service channel opened), `open` / `close` (a channel's label),
// `channel` ({label, channel}: a named channel the other side opened, once open),
// `message` ({type, data}), `ignored`, `kept` (count), `released` (the user let a held
// connection through).

import { PeerChannels, SERVICE_CHANNEL } from './channels.js';
import { Emitter } from '../core/events.js';
import { Timers } from './timers.js';

const MAX_QUEUED_CANDIDATES = 256;

/**
 * The one glare rule (docs/protocol.md §7, §9): when both sides offer at once, the side
 * with the smaller id is polite and yields to the other's offer.
 * @param {string} me @param {string} them
 */
export function isPolite(me, them) {
  return me < them;
}

/**
 * @typedef {'offer' | 'accept' | 'icecandidate'} Negotiation what a connection signals
 * @typedef {{afterMs: number, retryMs: number}} Recovery ICE restarts on a lost connection
 * @typedef {{
 *   owner: {peerId: string, peerName: string},
 *   guard: import('../verify/guard.js').Guard,
 *   configuration: RTCConfiguration,
 *   types: import('./channels.js').MessageRegistry,
 *   polite: boolean,
 *   signal: (type: Negotiation, data: Record<string, unknown>) => void,
 *   recovery?: Recovery | null,
 *   peerConnection?: (configuration: RTCConfiguration) => RTCPeerConnection,
 * }} ConnectionOptions `signal` relays to the owner's person (the role adds target and
 *   its own fields); `recovery`: restart ICE after a loss (calls), or leave it to the role;
 *   `peerConnection` makes the RTCPeerConnection (tests give a fake)
 */

export class Connection extends Emitter {
  /** @param {ConnectionOptions} o */
  constructor(o) {
    super();
    if (!o.guard) throw new TypeError('A connection needs the verification guard.');
    this.owner = o.owner;
    this.guard = o.guard;
    this.polite = o.polite;
    this.signal = o.signal;
    this.recovery = o.recovery ?? null;
    const make = o.peerConnection ?? ((/** @type {RTCConfiguration} */ c) => new RTCPeerConnection(c));
    const pc = (this.pc = make(o.configuration));
    this.closed = false;
    /** @type {(RTCIceCandidateInit | null)[]} arrived before the remote description */
    this.pendingCandidates = [];
    this.remoteDescriptionSet = false;
    this.makingOffer = false;
    /** @type {Map<RTCRtpSender, MediaStreamTrack | null>} what each sender sends when not held */
    this.intended = new Map();
    this.timers = new Timers();
    pc.onicecandidate = ({ candidate }) =>
      this.closed || this.signal('icecandidate', { candidate: candidate?.toJSON() ?? null });
    pc.ontrack = ({ track }) => this.emit('track', track);
    pc.onconnectionstatechange = () => this.connectionChanged();
    const channels = (this.channels = new PeerChannels(pc, o.types));
    channels.on('message', (message) => this.emit('message', message));
    channels.on('open', (label) => {
      this.emit('open', label);
      if (label === SERVICE_CHANNEL) this.emit('service');
    });
    channels.on('close', (label) => this.emit('close', label));
    channels.on('kept', (count) => this.emit('kept', count));
    channels.on('ignored', (label) => this.emit('ignored', label));
    // A named channel the other side opened (a transfer): announced once it is open.
    pc.addEventListener('datachannel', ({ channel }) => {
      if (channel.label === SERVICE_CHANNEL) return;
      const announce = () => this.emit('channel', { label: channel.label, channel });
      if (channel.readyState === 'open') announce();
      else channel.addEventListener('open', announce, { once: true });
    });
  }

  /**
   * A closed connection is silent: nothing it started can reach its old owner.
   * @param {string} type @param {any} [detail]
   */
  emit(type, detail) {
    if (!this.closed) super.emit(type, detail);
  }

  /** @returns {RTCPeerConnectionState} */
  get state() {
    return this.pc.connectionState;
  }

  /** The verification guard holds it: nothing of ours is sent. */
  get held() {
    return this.guard.isHeld(this);
  }

  /**
   * What verification knows of this connection (public/verify/guard.js), or null before
   * their description.
   */
  get check() {
    return this.guard.checkOf(this);
  }

  // --- negotiation ------------------------------------------------------------------------

  /**
   * Create and send an offer. @param {{iceRestart?: boolean, extra?: Record<string, unknown>}} [options]
   * `extra` fields go with it (a call's `rejoin`).
   */
  async offer({ iceRestart = false, extra = {} } = {}) {
    const { pc } = this;
    this.makingOffer = true;
    try {
      await pc.setLocalDescription(await pc.createOffer({ iceRestart }));
      if (!this.closed) this.signal('offer', { type: 'offer', sdp: pc.localDescription?.sdp, ...extra });
    } finally {
      this.makingOffer = false;
    }
  }

  async answer() {
    const { pc } = this;
    await pc.setLocalDescription(await pc.createAnswer());
    if (!this.closed) this.signal('accept', { type: 'answer', sdp: pc.localDescription?.sdp });
  }

  /**
   * Their offer on this connection (the first one, an ICE restart, new media). When both
   * offered at once, the impolite side ignores theirs and the polite side takes it (its
   * own offer is rolled back). Returns whether it was taken; `answer` false leaves the
   * answering to the role (a call's callee answers when its user accepts).
   * @param {string} sdp @param {{answer?: boolean}} [options]
   */
  async receiveOffer(sdp, { answer = true } = {}) {
    const collision = this.makingOffer || this.pc.signalingState !== 'stable';
    if (collision && !this.polite) return false;
    await this.applyRemote({ type: 'offer', sdp });
    if (this.closed) return false;
    if (answer) await this.answer();
    return !this.closed;
  }

  /** Their answer to our offer; a stale one is ignored (returns false). @param {string} sdp */
  async receiveAnswer(sdp) {
    if (this.pc.signalingState !== 'have-local-offer') return false;
    await this.applyRemote({ type: 'answer', sdp });
    return !this.closed;
  }

  /** @param {RTCSessionDescriptionInit} description */
  async applyRemote(description) {
    // Verification sees their fingerprint first, and may hold us before anything can flow.
    await this.guard.remote(this, description.sdp || '');
    if (this.closed) return;
    await this.pc.setRemoteDescription(description);
    if (this.closed) return;
    this.remoteDescriptionSet = true;
    for (const candidate of this.pendingCandidates.splice(0)) await this.addCandidate(candidate);
  }

  /** @param {RTCIceCandidateInit | null} candidate null: end of candidates */
  async addCandidate(candidate) {
    if (this.closed) return;
    if (!this.remoteDescriptionSet) {
      if (this.pendingCandidates.length < MAX_QUEUED_CANDIDATES) this.pendingCandidates.push(candidate);
      return;
    }
    // Candidates of an ignored offer or an abandoned attempt do not fit: harmless.
    await this.pc.addIceCandidate(candidate || undefined).catch(() => {});
  }

  // --- keeping it up ----------------------------------------------------------------------

  connectionChanged() {
    if (this.closed) return;
    const state = this.pc.connectionState;
    if (state === 'connected') {
      this.timers.clear('restart');
      this.guard.confirm(this).catch((error) => console.warn('verification', error));
    } else if (this.recovery && (state === 'disconnected' || state === 'failed')) {
      // 'disconnected' often heals by itself; 'failed' will not.
      if (state === 'failed') this.restartIce();
      else this.timers.schedule('restart', () => this.restartIce(), this.recovery.afterMs);
    }
    this.emit('connection', state);
  }

  /** New ICE credentials and candidates, over the (possibly resumed) signalling socket. */
  async restartIce(force = false) {
    const { pc } = this;
    if (this.closed || (!force && pc.connectionState === 'connected')) return;
    try {
      if (pc.signalingState === 'have-local-offer') {
        await pc.setLocalDescription({ type: 'rollback' }); // the last try got no answer
      }
      if (!this.closed && pc.signalingState === 'stable') await this.offer({ iceRestart: true });
    } catch (error) {
      console.debug('ICE restart failed', error);
    }
    if (!this.closed && this.recovery)
      this.timers.schedule('restart', () => this.restartIce(), this.recovery.retryMs);
  }

  // --- what we send -----------------------------------------------------------------------

  /**
   * A registered message on its channel; false if not sent (closed, held, not open).
   * @param {string} type @param {unknown} [data]
   */
  send(type, data) {
    return !this.closed && this.channels.send(type, data);
  }

  /**
   * Send `track` on `sender` (null: nothing), unless verification holds the connection:
   * then it goes once the user lets it through.
   * @param {RTCRtpSender} sender @param {MediaStreamTrack | null} track
   */
  async sendTrack(sender, track) {
    this.intended.set(sender, track);
    await sender.replaceTrack(this.held ? null : track);
  }

  /**
   * The guard's hold (public/verify/guard.js): tracks off the senders and channel messages
   * refused, or everything back as it was. @param {boolean} on
   */
  async hold(on) {
    this.channels.held = on;
    const senders = this.pc.getSenders();
    if (on) {
      for (const sender of senders) if (!this.intended.has(sender)) this.intended.set(sender, sender.track);
      await Promise.all(senders.filter((s) => s.track).map((s) => s.replaceTrack(null).catch(() => {})));
      return;
    }
    await Promise.all(senders.map((s) => s.replaceTrack(this.intended.get(s) ?? null).catch(() => {})));
    this.emit('released');
  }

  /** Let a held connection through (the user decided). */
  release() {
    return this.guard.release(this);
  }

  // --- the end ----------------------------------------------------------------------------

  /** Discard it: channels and the RTCPeerConnection closed, timers stopped, silent from now. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.timers.clearAll();
    this.channels.close();
    this.pc.close();
  }
}
