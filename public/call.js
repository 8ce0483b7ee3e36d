// One call's RTCPeerConnection: offer/answer, trickle ICE, its data channels, ICE restarts.

import { PeerChannels, SERVICE_CHANNEL } from './channels.js';
import { Emitter } from './events.js';

/**
 * @typedef {'calling' | 'ringing' | 'connecting' | 'connected' | 'reconnecting' | 'ended'} CallState
 * @typedef {'audio' | 'video'} Kind
 * @typedef {{
 *   peerId: string, peerName: string, direction: 'outgoing' | 'incoming', polite: boolean,
 *   iceServers: RTCIceServer[], stream: MediaStream,
 *   tracks: Record<Kind, MediaStreamTrack | null>, send: (type: string, data: object) => void,
 * }} CallOptions
 */

const RESTART_AFTER_MS = 2500; // 'disconnected' often heals by itself within this
const RESTART_RETRY_MS = 8000;
const GIVE_UP_MS = 45000;
const FULL_RESOLUTION_AFTER_MS = 1500;
const MAX_QUEUED_CANDIDATES = 256;
/** @type {Kind[]} */
const KINDS = ['audio', 'video'];

/**
 * Events: `state`, `track` (remote stream), `message` ({type, data}: from the peer over a
 * data channel, docs/protocol.md §6), `remotemedia` ({audio, video}, set by a subscriber),
 * `channel` (the service channel opened), `ended` ({reason, by, from: the last state}).
 */
export class Call extends Emitter {
  /** @param {CallOptions} o */
  constructor(o) {
    super();
    this.peerId = o.peerId;
    this.peerName = o.peerName;
    this.direction = o.direction;
    /** The polite side yields when both send an offer at once (docs/protocol.md §7: smaller id). */
    this.polite = o.polite;
    this.send = o.send;
    this.localStream = o.stream;
    this.localTracks = o.tracks;
    /** @type {CallState} */
    this.state = o.direction === 'outgoing' ? 'calling' : 'ringing';
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

    const pc = (this.pc = new RTCPeerConnection({ iceServers: o.iceServers, bundlePolicy: 'max-bundle' }));
    pc.onicecandidate = ({ candidate }) =>
      this.send('icecandidate', { target: this.peerId, candidate: candidate?.toJSON() ?? null });
    pc.ontrack = ({ track }) => {
      if (!this.remoteStream.getTrackById(track.id)) this.remoteStream.addTrack(track);
      this.emit('track', this.remoteStream);
    };
    pc.onconnectionstatechange = () => this.connectionChanged();
    // The negotiated service channel (id 0) and any named ones; messages are re-emitted
    // for their subscribers (the chat panel, the remote media state, a data-channel hang-up).
    const channels = (this.channels = new PeerChannels(pc));
    channels.on('message', (message) => this.emit('message', message));
    channels.on('open', (label) => {
      if (label !== SERVICE_CHANNEL) return;
      this.mediaChanged();
      this.emit('channel');
    });
    // The other side closed its connection (tab closed, crash): nothing more will come.
    channels.on('close', (label) => {
      if (label === SERVICE_CHANNEL && (this.state === 'connected' || this.state === 'reconnecting')) this.end('gone', 'remote');
    });
  }

  /** Caller: send the invitation. */
  async start() {
    for (const kind of KINDS) {
      const track = this.localTracks[kind];
      /** @type {RTCRtpTransceiverInit} */
      const init = { direction: 'sendrecv', streams: [this.localStream] };
      if (kind === 'video') init.sendEncodings = [{ scaleResolutionDownBy: fastStartScale(track) }];
      this.transceivers[kind] = this.pc.addTransceiver(track || kind, init);
    }
    await this.offer();
  }

  /** Callee: apply the invitation while it rings; nothing is sent until `accept()`. */
  prepare(sdp) {
    this.prepared = this.applyRemote({ type: 'offer', sdp }).catch((error) => this.fail(error));
  }

  async accept() {
    if (this.state !== 'ringing') return;
    this.setState('connecting');
    await this.prepared;
    if (this.state === 'ended') return;
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = /** @type {Kind} */ (transceiver.receiver.track.kind);
      if (this.transceivers[kind] || transceiver.currentDirection === 'stopped') continue;
      this.transceivers[kind] = transceiver;
      // Send both ways even without a track, so a camera found later needs no renegotiation.
      transceiver.direction = 'sendrecv';
      const { sender } = transceiver;
      await sender.replaceTrack(this.localTracks[kind]);
      sender.setStreams?.(this.localStream);
      const params = sender.getParameters();
      if (kind === 'video' && params.encodings?.[0]) {
        params.encodings[0].scaleResolutionDownBy = fastStartScale(this.localTracks.video);
        await sender.setParameters(params).catch(() => {});
      }
    }
    await this.answer();
    this.connectionChanged();
  }

  /** A relayed message about this call. @param {string} type @param {any} data */
  async handle(type, data) {
    try {
      if (type === 'icecandidate') await this.addCandidate(data.candidate);
      else if (type === 'accept') await this.accepted(data.sdp);
      else if (type === 'offer') await this.renegotiate(data.sdp);
    } catch (error) {
      this.fail(error);
    }
  }

  /** @param {string} sdp */
  async accepted(sdp) {
    if (this.pc.signalingState !== 'have-local-offer') return; // a stale answer
    if (this.state === 'calling') this.setState('connecting');
    await this.applyRemote({ type: 'answer', sdp });
    this.connectionChanged(); // ICE may have finished while the candidates were added
  }

  /**
   * An offer from the peer already in the call (ICE restart, new media) is answered
   * without ringing. When both offer at once, the impolite side ignores the peer's.
   * @param {string} sdp
   */
  async renegotiate(sdp) {
    this.ignoreOffer = !this.polite && (this.makingOffer || this.pc.signalingState !== 'stable');
    if (this.ignoreOffer) return;
    await this.applyRemote({ type: 'offer', sdp }); // rolls back our own offer, if any
    await this.answer();
  }

  /** @param {RTCSessionDescriptionInit} description */
  async applyRemote(description) {
    await this.pc.setRemoteDescription(description);
    this.remoteDescriptionSet = true;
    for (const candidate of this.pendingCandidates.splice(0)) await this.addCandidate(candidate);
  }

  /** @param {RTCIceCandidateInit | null} candidate null: end of candidates */
  async addCandidate(candidate) {
    if (!this.remoteDescriptionSet) {
      if (this.pendingCandidates.length < MAX_QUEUED_CANDIDATES) this.pendingCandidates.push(candidate);
      return;
    }
    // Candidates of an ignored offer or an abandoned attempt do not fit: harmless.
    await this.pc.addIceCandidate(candidate || undefined).catch(() => {});
  }

  async offer(iceRestart = false) {
    this.makingOffer = true;
    try {
      await this.pc.setLocalDescription(await this.pc.createOffer({ iceRestart }));
      this.send('offer', { type: 'offer', sdp: this.pc.localDescription?.sdp, target: this.peerId });
    } finally {
      this.makingOffer = false;
    }
  }

  async answer() {
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this.send('accept', { type: 'answer', sdp: this.pc.localDescription?.sdp, target: this.peerId });
  }

  connectionChanged() {
    if (this.state === 'ended' || this.state === 'ringing' || this.state === 'calling') return;
    const connection = this.pc.connectionState;
    if (connection === 'connected') {
      this.clearTimers('restart', 'giveUp');
      if (!this.connectedAt) {
        this.connectedAt = Date.now();
        this.timers.full = setTimeout(() => this.fullResolution(), FULL_RESOLUTION_AFTER_MS);
      }
      this.setState('connected');
    } else if (connection === 'disconnected' || connection === 'failed') {
      if (this.state === 'connected') this.setState('reconnecting');
      this.timers.giveUp ??= setTimeout(() => this.end('failed', 'local'), GIVE_UP_MS);
      if (connection === 'failed') this.restartIce();
      else this.schedule('restart', () => this.restartIce(), RESTART_AFTER_MS);
    }
  }

  /** New ICE credentials and candidates, over the (possibly resumed) signalling socket. */
  async restartIce(force = false) {
    if (this.state === 'ended' || (!force && this.pc.connectionState === 'connected')) return;
    try {
      if (this.pc.signalingState === 'have-local-offer') {
        await this.pc.setLocalDescription({ type: 'rollback' }); // the last try got no answer
      }
      if (this.pc.signalingState === 'stable') await this.offer(true);
    } catch (error) {
      console.debug('ICE restart failed', error);
    }
    this.schedule('restart', () => this.restartIce(), RESTART_RETRY_MS);
  }

  /** The device's network changed (`online`): our candidates may be stale. */
  networkChanged() {
    if (this.state === 'connected' || this.state === 'reconnecting') this.restartIce(true);
  }

  async fullResolution() {
    const sender = this.transceivers.video?.sender;
    const params = sender?.getParameters();
    if (!sender || !params?.encodings?.[0]) return;
    params.encodings[0].scaleResolutionDownBy = 1;
    await sender.setParameters(params).catch(() => {});
  }

  /** Device switch or screen share: swap the outgoing track in place. @param {Kind} kind */
  async replaceTrack(kind, track) {
    this.localTracks[kind] = track;
    await this.transceivers[kind]?.sender.replaceTrack(track);
    this.mediaChanged();
  }

  /** Tell the peer whether our camera and mic are on, so it shows "muted", not silence. */
  mediaChanged() {
    const on = (/** @type {Kind} */ kind) => {
      const track = this.localTracks[kind];
      return Boolean(track?.enabled && track.readyState === 'live');
    };
    this.channels.send('media', { audio: on('audio'), video: on('video') });
  }

  /** The callee's device rings: "Calling…" becomes "Ringing…" (same state, new stage). */
  remoteRinging() {
    if (this.state !== 'calling' || this.alerting) return;
    this.alerting = true;
    this.emit('state', this.state);
  }

  /**
   * Cancel (while calling) or hang up (in the call).
   * @param {string} reason what the peer is told @param {string} ending what we show, if different
   */
  hangup(reason = 'hangup', ending = reason) {
    if (this.state === 'ended') return;
    this.channels.send('disconnect'); // arrives even while signalling is down
    this.send('hangup', { target: this.peerId, reason });
    this.end(ending, 'local');
  }

  /** @param {'declined' | 'busy' | 'timeout' | 'left'} reason */
  decline(reason) {
    if (this.state === 'ended') return;
    this.send('reject', { target: this.peerId, reason });
    this.end(reason, 'local');
  }

  /** @param {unknown} error */
  fail(error) {
    console.warn('call failed', error);
    this.hangup('error');
  }

  /** @param {string} reason @param {'local' | 'remote'} by */
  end(reason, by) {
    if (this.state === 'ended') return;
    const from = this.state;
    this.clearTimers(...Object.keys(this.timers));
    this.pc.close();
    this.setState('ended');
    this.emit('ended', { reason, by, from });
  }

  /** @param {CallState} state */
  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', state);
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
