// Call control: one peer link per remote person (an id-keyed map), and what each call
// message means right now (ring, busy, glare, renegotiation), ring timeouts, and the
// words people see when a call ends.

import { Emitter } from './events.js';
import { PeerLink } from './peerlink.js';
import { endOnDisconnect, followRemoteMedia } from './peermessages.js';

/**
 * @typedef {{id: string, name: string, kind: string, remove?: boolean}} Person
 * @typedef {{reason: string, by: 'local' | 'remote', from: string}} Ending
 */

const CALLEE_RING_SLACK_MS = 5000; // the caller's own timeout normally ends the ring first

/**
 * Events: `call` (a PeerLink's call is starting or ringing), `ended` ({call, reason,
 * notice}), `missed` ({peerId, name, reason}: someone called and we did not answer:
 * busy, rang out, or they gave up first).
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
    /** @type {Map<string, PeerLink>} one link per remote person, by peer id; idle between calls */
    this.links = new Map();
    media.on('trackchange', ({ kind, track }) => this.eachActive((link) => link.replaceTrack(kind, track)));
    media.on('change', () => this.eachActive((link) => link.mediaChanged()));
    addEventListener('online', () => this.eachActive((link) => link.networkChanged()));
  }

  /** The link in a call (calling, ringing or in it), or null: there is at most one. */
  get current() {
    for (const link of this.links.values()) if (link.active) return link;
    return null;
  }

  get active() {
    return this.current !== null;
  }

  /** @param {(link: PeerLink) => void} action */
  eachActive(action) {
    for (const link of this.links.values()) if (link.active) action(link);
  }

  /** The user tapped a person. @param {string} peerId */
  call(peerId) {
    const person = this.people.get(peerId);
    if (this.active || !person) return;
    const link = this.linkFor(person.id, person.name);
    if (!link.dial(this.setup(peerId))) return;
    this.emit('call', link);
    link.start().catch(link.failure());
    this.ring(link, 'calling', () => link.hangup('timeout'), 0);
  }

  accept() {
    const link = this.current;
    if (!link?.is('ringing')) return;
    link.clearTimers('ring');
    link.accept().catch(link.failure());
  }

  decline() {
    const link = this.current;
    if (link?.is('ringing')) link.decline('declined');
  }

  /** Cancel while calling, hang up in a call. */
  hangup() {
    const link = this.current;
    if (link?.is('ringing')) link.decline('declined');
    else link?.hangup(link.is('calling') ? 'cancelled' : 'hangup');
  }

  /** The page is going away: the peer hears "left", whatever state the call is in. */
  leave() {
    const link = this.current;
    if (link?.is('ringing')) link.decline('left');
    else link?.hangup('left');
  }

  /** A relayed message from the server. @param {string} type @param {any} data */
  handle(type, data) {
    const from = type === 'icecandidate' ? data.id : data.source;
    if (typeof from !== 'string') return;
    if (type === 'offer') return this.offer(from, data.sdp);
    const link = this.links.get(from);
    if (!link?.active) return; // about a call that is over
    if (type === 'reject') {
      if (link.is('calling')) link.end(String(data.reason || 'declined'), 'remote');
    } else if (type === 'hangup') {
      link.end(String(data.reason || 'hangup'), 'remote');
    } else if (type === 'ringing') {
      link.remoteRinging();
    } else {
      link.handle(type, data);
    }
  }

  /** @param {string} from @param {unknown} sdp */
  offer(from, sdp) {
    if (typeof sdp !== 'string') return;
    const link = this.current;
    if (!link) return this.incoming(from, sdp, false);
    if (link.peerId !== from) {
      this.send('reject', { target: from, reason: 'busy' });
      this.emit('missed', { peerId: from, name: this.people.get(from)?.name || 'Someone', reason: 'busy' });
    } else if (link.is('calling')) {
      // Both called each other at once (docs/protocol.md §7): the smaller id drops its own
      // attempt silently and takes the other's call; the larger id ignores this offer.
      if ((this.signalling.id || '') < from) {
        link.end('glare', 'local');
        this.incoming(from, sdp, true);
      }
    } else if (!link.is('ringing')) {
      link.handle('offer', { sdp }); // renegotiation from the peer already in the call
    }
  }

  /** @param {string} from @param {string} sdp @param {boolean} answerNow */
  incoming(from, sdp, answerNow) {
    const link = this.linkFor(from, this.people.get(from)?.name || 'Someone');
    if (!link.offered(sdp, this.setup(from))) return;
    if (answerNow) link.accept().catch(link.failure()); // 'connecting' at once: no ring
    else this.send('ringing', { target: from }); // the caller's "Calling…" becomes "Ringing…"
    this.emit('call', link);
    this.ring(link, 'ringing', () => link.decline('timeout'), CALLEE_RING_SLACK_MS);
  }

  /**
   * @param {PeerLink} link @param {import('./linkstate.js').LinkStateName} state
   * @param {() => void} giveUp @param {number} slack
   */
  ring(link, state, giveUp, slack) {
    const timeout = this.signalling.config?.ringTimeoutMs || 30000;
    link.schedule('ring', () => link.is(state) && giveUp(), timeout + slack);
  }

  /** What a new call with `peerId` starts with. @param {string} peerId */
  setup(peerId) {
    return {
      polite: (this.signalling.id || '') < peerId,
      iceServers: this.signalling.config?.iceServers || [],
      stream: this.media.stream,
      tracks: { audio: this.media.audioTrack, video: this.media.videoTrack },
    };
  }

  /** The person's link, made on first contact. @param {string} peerId @param {string} peerName */
  linkFor(peerId, peerName) {
    const known = this.links.get(peerId);
    if (known) {
      known.peerName = peerName;
      return known;
    }
    const link = new PeerLink({ peerId, peerName, signal: (type, data) => this.send(type, data) });
    this.links.set(peerId, link);
    followRemoteMedia(link);
    endOnDisconnect(link);
    link.on('ended', (/** @type {Ending} */ ending) => {
      if (link.direction === 'incoming' && ending.from === 'ringing' && wasMissed(ending)) {
        this.emit('missed', { peerId: link.peerId, name: link.peerName, reason: ending.reason });
      }
      // A glare loser is replaced by the peer's call: not an ending anyone should see.
      if (ending.reason !== 'glare') this.emit('ended', { call: link, reason: ending.reason, notice: describeEnd(link, ending) });
    });
    return link;
  }

  /** Sender fields are filled in for old clients; the server overwrites them anyway. */
  send(type, data) {
    const me = this.signalling.id;
    this.signalling.send(type, { ...data, [type === 'icecandidate' ? 'id' : 'source']: me });
  }

  /** Someone was renamed or left. @param {Person} person */
  personChanged(person) {
    const link = this.links.get(person.id);
    if (!link) return;
    if (!person.remove) {
      link.peerName = person.name;
    } else if (!link.active) {
      this.links.delete(person.id); // gone, and no call with them: nothing to keep
    } else if (link.pc?.connectionState !== 'connected') {
      // A call whose media flows peer to peer goes on: only their signalling is gone.
      link.end('left', 'remote');
    }
  }

  /**
   * A server `error`: true if it was about a peer who is gone or away (handled here).
   * Only a lost invitation or answer ends the call; a stray candidate or hang-up does not.
   * @param {{code: string, ref?: string, target?: string}} error
   */
  serverError({ code, ref, target }) {
    const link = target === undefined ? this.current : this.links.get(target);
    if (code === 'peer-away' || code === 'undelivered') {
      // Their socket is gone: say so now rather than ring into the void. The hang-up is
      // held with the offer, so if they come back they see a missed call, not a ring.
      if (ref === 'offer' && link?.is('calling')) link.hangup('cancelled', 'unreachable');
      return true;
    }
    if (code !== 'unknown-peer') return false;
    const call = this.current; // the server may not name the target of an unknown peer
    if ((ref === 'offer' && call?.is('calling')) || (ref === 'accept' && call?.is('connecting'))) {
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

/** @param {PeerLink} call @param {Ending} ending */
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
