// The life of the link with one remote person, as one transition table.
//
// Every remote person has at most one link (an RTCPeerConnection and its data channels);
// media calls, data-only links and, later, group membership all run through it. Code asks
// the link what it is doing (`is`, `state`) and tells it what happened (`fire`); nothing
// else assigns a state, so every state a screen can show is reachable only through this
// table.
//
// States
//   idle          no RTCPeerConnection with this person
//   calling       we sent an offer and wait for an answer (the `ringing` relay sets the
//                 link's `alerting` flag, shown as "Ringing…")
//   ringing       their offer arrived; our user has not answered yet
//   connecting    answered on both sides; ICE and DTLS are being set up
//   connected     media and data flow
//   reconnecting  the network dropped; an ICE restart is under way
//   ended         over (hang-up, decline, timeout, error, the person left); `reset`
//                 returns the link to idle once its owner has reported why
//
// Events
//   dial        idle -> calling              we call them
//   offered     idle -> ringing              they call us
//   link        idle -> connecting           a data-only link, no ringing (messages, files)
//   accept      ringing -> connecting        our user accepts
//   answered    calling -> connecting        their `accept` (SDP answer) arrived
//   connected   connecting|reconnecting -> connected   ICE connected
//   lost        connected -> reconnecting    ICE disconnected or failed
//   end         any but idle/ended -> ended  for any reason (kept in `reason`)
//   reset       ended -> idle
//
// An event the current state does not list is refused (`fire` returns false): a late
// ICE callback after a hang-up, a second accept, an answer to a call already over.

import { Emitter } from '../core/events.js';

/**
 * @typedef {'idle' | 'calling' | 'ringing' | 'connecting' | 'connected' | 'reconnecting'
 *   | 'ended'} LinkStateName
 */
/**
 * @typedef {'dial' | 'offered' | 'link' | 'accept' | 'answered' | 'connected' | 'lost' | 'end'
 *   | 'reset'} LinkEvent
 */

/** @type {Readonly<Record<LinkStateName, Partial<Record<LinkEvent, LinkStateName>>>>} */
export const TRANSITIONS = Object.freeze({
  idle: { dial: 'calling', offered: 'ringing', link: 'connecting' },
  calling: { answered: 'connecting', end: 'ended' },
  ringing: { accept: 'connecting', end: 'ended' },
  connecting: { connected: 'connected', end: 'ended' },
  connected: { lost: 'reconnecting', end: 'ended' },
  reconnecting: { connected: 'connected', end: 'ended' },
  ended: { reset: 'idle' },
});

/** States in which a call is under way (ringing counts: it holds the person's line). */
export const ACTIVE = Object.freeze(
  new Set(['calling', 'ringing', 'connecting', 'connected', 'reconnecting']),
);

/** Events: `state` ({from, to, event}). */
export class LinkState extends Emitter {
  /** @param {LinkStateName} [initial] */
  constructor(initial = 'idle') {
    super();
    /** @type {LinkStateName} */
    this.state = initial;
    /** Why the link ended (hangup, declined, busy, timeout, left, error, ...). */
    this.reason = '';
  }

  /**
   * Apply an event. Returns whether the table allowed it.
   * @param {LinkEvent} event @param {string} [reason] for `end`
   */
  fire(event, reason = '') {
    const from = this.state;
    const to = TRANSITIONS[from][event];
    if (!to) return false;
    this.state = to;
    if (event === 'end') this.reason = reason;
    if (event === 'reset') this.reason = '';
    this.emit('state', { from, to, event });
    return true;
  }

  /** @param {...LinkStateName} states */
  is(...states) {
    return states.includes(this.state);
  }

  /** A call is under way (not idle, not ended). */
  get active() {
    return ACTIVE.has(this.state);
  }

  /** Whether `event` would be accepted now. @param {LinkEvent} event */
  can(event) {
    return Boolean(TRANSITIONS[this.state][event]);
  }
}
