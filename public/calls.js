// Call control: what each call message means right now (ring, busy, glare, renegotiation),
// ring timeouts, and the words people see when a call ends.

import { Call } from './call.js';
import { Emitter } from './events.js';
import { endOnDisconnect, followRemoteMedia } from './peermessages.js';

/**
 * @typedef {{id: string, name: string, kind: string, remove?: boolean}} Person
 * @typedef {{reason: string, by: 'local' | 'remote', from: string}} Ending
 */

const CALLEE_RING_SLACK_MS = 5000; // the caller's own timeout normally ends the ring first

/**
 * Events: `call` (a Call is starting or ringing), `ended` ({call, reason, notice}),
 * `missed` ({peerId, name, reason}: someone called and we did not answer: busy, rang
 * out, or they gave up first).
 */
export class CallController extends Emitter {
  /**
   * @param {import('./signalling.js').Signalling} signalling
   * @param {import('./media.js').Media} media
   * @param {{get(id: string): Person | undefined}} people who is listed now (the roster)
   */
  constructor(signalling, media, people) {
    super();
    this.signalling = signalling;
    this.media = media;
    this.people = people;
    /** @type {Call | null} */ this.current = null;
    this.ringTimer = 0;
    media.on('trackchange', ({ kind, track }) => this.current?.replaceTrack(kind, track));
    media.on('change', () => this.current?.mediaChanged());
    addEventListener('online', () => this.current?.networkChanged());
  }

  get active() {
    return Boolean(this.current && this.current.state !== 'ended');
  }

  /** The user tapped a person. @param {string} peerId */
  call(peerId) {
    const person = this.people.get(peerId);
    if (this.active || !person) return;
    const call = this.create(person.id, person.name, 'outgoing');
    this.emit('call', call);
    call.start().catch((error) => call.fail(error));
    this.ring(call, 'calling', () => call.hangup('timeout'), 0);
  }

  accept() {
    if (this.current?.state !== 'ringing') return;
    clearTimeout(this.ringTimer);
    const call = this.current;
    call.accept().catch((error) => call.fail(error));
  }

  decline() {
    if (this.current?.state === 'ringing') this.current.decline('declined');
  }

  /** Cancel while calling, hang up in a call. */
  hangup() {
    const call = this.current;
    if (call?.state === 'ringing') call.decline('declined');
    else call?.hangup(call.state === 'calling' ? 'cancelled' : 'hangup');
  }

  /** The page is going away: the peer hears "left", whatever state the call is in. */
  leave() {
    const call = this.current;
    if (call?.state === 'ringing') call.decline('left');
    else call?.hangup('left');
  }

  /** A relayed message from the server. @param {string} type @param {any} data */
  handle(type, data) {
    const from = type === 'icecandidate' ? data.id : data.source;
    if (typeof from !== 'string') return;
    if (type === 'offer') return this.offer(from, data.sdp);
    const call = this.current;
    if (call?.peerId !== from || call.state === 'ended') return; // about a call that is over
    if (type === 'reject') {
      if (call.state === 'calling') call.end(String(data.reason || 'declined'), 'remote');
    } else if (type === 'hangup') {
      call.end(String(data.reason || 'hangup'), 'remote');
    } else if (type === 'ringing') {
      call.remoteRinging();
    } else {
      call.handle(type, data);
    }
  }

  /** @param {string} from @param {unknown} sdp */
  offer(from, sdp) {
    if (typeof sdp !== 'string') return;
    const call = this.current;
    if (!call || call.state === 'ended') return this.incoming(from, sdp, false);
    if (call.peerId !== from) {
      this.send('reject', { target: from, reason: 'busy' });
      this.emit('missed', { peerId: from, name: this.people.get(from)?.name || 'Someone', reason: 'busy' });
    } else if (call.state === 'calling') {
      // Both called each other at once (docs/protocol.md §7): the smaller id drops its own
      // attempt silently and takes the other's call; the larger id ignores this offer.
      if ((this.signalling.id || '') < from) {
        call.end('glare', 'local');
        this.incoming(from, sdp, true);
      }
    } else if (call.state !== 'ringing') {
      call.handle('offer', { sdp }); // renegotiation from the peer already in the call
    }
  }

  /** @param {string} from @param {string} sdp @param {boolean} answerNow */
  incoming(from, sdp, answerNow) {
    const call = this.create(from, this.people.get(from)?.name || 'Someone', 'incoming');
    call.prepare(sdp);
    if (answerNow) call.accept().catch((error) => call.fail(error)); // 'connecting' at once: no ring
    else this.send('ringing', { target: from }); // the caller's "Calling…" becomes "Ringing…"
    this.emit('call', call);
    this.ring(call, 'ringing', () => call.decline('timeout'), CALLEE_RING_SLACK_MS);
  }

  /** @param {Call} call @param {string} state @param {() => void} giveUp @param {number} slack */
  ring(call, state, giveUp, slack) {
    const timeout = this.signalling.config?.ringTimeoutMs || 30000;
    this.ringTimer = setTimeout(() => call.state === state && giveUp(), timeout + slack);
  }

  /** @param {string} peerId @param {string} peerName @param {'outgoing' | 'incoming'} direction */
  create(peerId, peerName, direction) {
    const call = new Call({
      peerId,
      peerName,
      direction,
      polite: (this.signalling.id || '') < peerId,
      iceServers: this.signalling.config?.iceServers || [],
      stream: this.media.stream,
      tracks: { audio: this.media.audioTrack, video: this.media.videoTrack },
      send: (type, data) => this.send(type, data),
    });
    this.current = call;
    followRemoteMedia(call);
    endOnDisconnect(call);
    call.on('ended', (/** @type {Ending} */ ending) => {
      clearTimeout(this.ringTimer);
      if (this.current === call) this.current = null;
      if (call.direction === 'incoming' && ending.from === 'ringing' && wasMissed(ending)) {
        this.emit('missed', { peerId: call.peerId, name: call.peerName, reason: ending.reason });
      }
      // A glare loser is replaced by the peer's call: not an ending anyone should see.
      if (ending.reason !== 'glare') this.emit('ended', { call, reason: ending.reason, notice: describeEnd(call, ending) });
    });
    return call;
  }

  /** Sender fields are filled in for old clients; the server overwrites them anyway. */
  send(type, data) {
    const me = this.signalling.id;
    this.signalling.send(type, { ...data, [type === 'icecandidate' ? 'id' : 'source']: me });
  }

  /** Someone was renamed or left. @param {Person} person */
  personChanged(person) {
    const call = this.current;
    if (call?.peerId !== person.id || call.state === 'ended') return;
    if (!person.remove) {
      call.peerName = person.name;
    } else if (call.pc.connectionState !== 'connected') {
      // A call whose media flows peer to peer goes on: only their signalling is gone.
      call.end('left', 'remote');
    }
  }

  /**
   * A server `error`: true if it was about a peer who is gone or away (handled here).
   * Only a lost invitation or answer ends the call; a stray candidate or hang-up does not.
   * @param {{code: string, ref?: string, target?: string}} error
   */
  serverError({ code, ref, target }) {
    const call = this.current;
    if (code === 'peer-away' || code === 'undelivered') {
      // Their socket is gone: say so now rather than ring into the void. The hang-up is
      // held with the offer, so if they come back they see a missed call, not a ring.
      const ours = call?.state === 'calling' && (target === undefined || target === call.peerId);
      if (ours && ref === 'offer') call.hangup('cancelled', 'unreachable');
      return true;
    }
    if (code !== 'unknown-peer') return false;
    if ((ref === 'offer' && call?.state === 'calling') || (ref === 'accept' && call?.state === 'connecting')) {
      call.end('unavailable', 'local');
    }
    return true;
  }
}

/**
 * An incoming call that stopped ringing without an answer: missed, unless we declined it
 * or our own page was going away. @param {Ending} ending
 */
export function wasMissed({ reason, by }) {
  return !(by === 'local' && (reason === 'declined' || reason === 'left'));
}

/** @param {Call} call @param {Ending} ending */
export function describeEnd(call, { reason, by, from }) {
  const who = call.peerName;
  const took = call.connectedAt ? ` · ${formatDuration((Date.now() - call.connectedAt) / 1000)}` : '';
  if (from === 'ringing') {
    if (by === 'local') return reason === 'timeout' ? `Missed call from ${who}` : `You declined ${who}’s call`;
    return reason === 'left' ? `${who} left before you answered` : `Missed call from ${who}`;
  }
  const local = {
    timeout: `No answer from ${who}`,
    cancelled: 'Call cancelled',
    unavailable: `${who} is no longer here`,
    unreachable: `${who} isn’t reachable right now`,
    failed: `Lost the connection to ${who}`,
    error: `The call with ${who} could not be set up`,
  };
  const remote = {
    declined: `${who} declined the call`,
    busy: `${who} is in another call`,
    timeout: `No answer from ${who}`,
    left: from === 'calling' ? `${who} left` : `${who} left the call${took}`,
    gone: `${who} left the call${took}`,
    error: `The call with ${who} failed`,
  };
  const text = by === 'local' ? local[reason] : remote[reason];
  return text || (by === 'local' ? `Call with ${who} ended${took}` : `${who} ended the call${took}`);
}

/** @param {number} seconds */
export function formatDuration(seconds) {
  const s = Math.round(seconds);
  const mm = `${Math.floor(s / 60) % 60}`;
  const ss = `${s % 60}`.padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm.padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}
