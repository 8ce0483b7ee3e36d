// This tab's part in calls beyond single links, as one transition table: the group call we
// are a member of, the invitation ringing here, the `join` we wait on, the invitations we
// sent, the caller waiting (docs/protocol.md §8).
//
// Each link has its own table (linkstate.js: dialling, ringing, connected...); this one
// holds what concerns the whole call, and the data each state needs, so a combination
// such as "joining one call while a member of another" or "invitations out but no call"
// cannot be written down. CallController (calls.js) asks it (`is`, the getters) and tells
// it what happened (`fire`); nothing else keeps these facts.
//
// States, and the data each holds
//   idle        in no call the server lists, no invitation rings, no `join` sent. A 1:1 call
//               may be under way on a link (linkstate.js): the server lists it once answered.
//   invitation  someone's invitation to their call rings here: `invitation` (who, which call,
//               its words, and the timer that gives up on it)
//   joining     we sent `join` and wait for the member list: `joining` (the call id) and
//               `from` (the attempt that led here when the person we called added us to
//               their call, or null)
//   member      in a call the server lists (a 1:1 call too, once answered): `group` ({id,
//               members}) and `invites` (people we invited who have not answered: id -> name,
//               oldest first, since a refusal may not say whose)
//   waiting     a member, and someone else calls us and waits for "Add" or "Decline": as
//               member, plus `waiting` (their id)
//   leaving     we hang up every link of the call, so their endings are ours and not news:
//               `group` (the call we leave, or null when the server listed none yet)
//
// Events (`same`: the state does not change, its data does)
//   invited      idle -> invitation            an `invite` for us arrives while we are free
//   accept       invitation -> joining         our user accepts: we send `join`
//   dismiss      invitation -> idle            declined, unanswered, or withdrawn by the inviter
//   join         idle -> joining               the person we were calling added us to their call
//   join-failed  joining -> idle               the server refused `join`, or that call ended first
//   listed       idle|joining -> member        a `call` lists us: the 1:1 call we dialled or
//                                              answered (grouplogic.js mayAdoptCall), or the call
//                                              we asked to join
//   listed       member|waiting -> same        its members changed (invitations to them are over)
//   invite       member|waiting -> same        we invite someone ("Add people", "Add to this call")
//   uninvite     member|waiting -> same        an invitation of ours is over (answered, refused,
//                                              withdrawn, expired)
//   wait         member -> waiting             someone calls us during the call
//   unwait       waiting -> member             the caller waiting was added, declined, or gave up
//   leave        idle|member|waiting -> leaving  we hang up the call's links (idle: two links up
//                                              before the server lists their call)
//   left         leaving -> idle               every link hung up, `leave-call` sent
//   over         member|waiting -> idle        the server ended the call for us, or our last
//                                              link ended
//
// An event the current state does not list is refused (`fire` returns false), and so is
// one whose data does not fit: `listed` for another call than the one held, `invite` of a
// member or of someone invited already, `uninvite` of someone not invited. `can` answers
// from the table alone.

import { Emitter } from '../core/events.js';

/** @typedef {'idle' | 'invitation' | 'joining' | 'member' | 'waiting' | 'leaving'} CallStateName */
/**
 * @typedef {'invited' | 'accept' | 'dismiss' | 'join' | 'join-failed' | 'listed' | 'invite' | 'uninvite'
 *   | 'wait' | 'unwait' | 'leave' | 'left' | 'over'} CallEvent
 */
/**
 * @typedef {{readonly id: string, readonly members: readonly string[]}} GroupCall
 * the call we are a member of, as the server lists it
 * @typedef {{from: string, name: string, call: string, members: string[], text: string, others: string,
 *   timer: ReturnType<typeof setTimeout>}} Invitation
 * `others`: who else is in the call (not us, not the inviter), or ''
 */
/**
 * What each event brings.
 * @template Link
 * @typedef {{
 *   invited: [invitation: Invitation], accept: [], dismiss: [], join: [call: string, from: Link | null],
 *   'join-failed': [], listed: [group: {id: string, members: readonly string[]}],
 *   invite: [id: string, name: string], uninvite: [id: string], wait: [id: string], unwait: [],
 *   leave: [], left: [], over: []
 * }} EventArgs
 */
/**
 * The state and its data: one shape per state, so no other combination exists.
 * @template Link
 * @typedef {{state: 'idle'}
 *   | {state: 'invitation', invitation: Readonly<Invitation>}
 *   | {state: 'joining', joining: string, from: Link | null}
 *   | {state: 'member', group: GroupCall, invites: ReadonlyMap<string, string>}
 *   | {state: 'waiting', group: GroupCall, invites: ReadonlyMap<string, string>, waiting: string}
 *   | {state: 'leaving', group: GroupCall | null}} Held
 */

/** @type {Readonly<Record<CallStateName, Partial<Record<CallEvent, CallStateName>>>>} */
export const TRANSITIONS = Object.freeze({
  idle: { invited: 'invitation', join: 'joining', listed: 'member', leave: 'leaving' },
  invitation: { accept: 'joining', dismiss: 'idle' },
  joining: { listed: 'member', 'join-failed': 'idle' },
  member: {
    listed: 'member',
    invite: 'member',
    uninvite: 'member',
    wait: 'waiting',
    leave: 'leaving',
    over: 'idle',
  },
  waiting: {
    listed: 'waiting',
    invite: 'waiting',
    uninvite: 'waiting',
    unwait: 'member',
    leave: 'leaving',
    over: 'idle',
  },
  leaving: { left: 'idle' },
});

/** @type {ReadonlyMap<string, string>} */
const NOBODY = new Map();

/** @param {{id: string, members: readonly string[]}} group @returns {GroupCall} */
function frozenGroup({ id, members }) {
  return Object.freeze({ id, members: Object.freeze([...members]) });
}

/**
 * Events: `state` ({from, to, event}), after every change of state or of its data.
 * @template [Link=unknown] what `from` holds (a PeerLink in the page; anything in tests)
 */
export class CallState extends Emitter {
  constructor() {
    super();
    /** @type {Readonly<Held<Link>>} */
    this.held = Object.freeze({ state: 'idle' });
  }

  /** @returns {CallStateName} */
  get state() {
    return this.held.state;
  }

  /** @param {...CallStateName} states */
  is(...states) {
    return states.includes(this.held.state);
  }

  /** Whether the table lists `event` in this state. @param {CallEvent} event */
  can(event) {
    return Boolean(TRANSITIONS[this.held.state][event]);
  }

  /** The call we are in (or leave), or null. */
  get group() {
    const held = this.held;
    const inCall = held.state === 'member' || held.state === 'waiting' || held.state === 'leaving';
    return inCall ? held.group : null;
  }

  /** The invitation ringing here, or null. */
  get invitation() {
    return this.held.state === 'invitation' ? this.held.invitation : null;
  }

  /** The call we asked to join, or null. */
  get joining() {
    return this.held.state === 'joining' ? this.held.joining : null;
  }

  /** The attempt that led to our `join`, or null. */
  get from() {
    return this.held.state === 'joining' ? this.held.from : null;
  }

  /** People we invited who have not answered: id -> name, oldest first. */
  get invites() {
    const held = this.held;
    return held.state === 'member' || held.state === 'waiting' ? held.invites : NOBODY;
  }

  /** The id of the caller waiting, or null. */
  get waiting() {
    return this.held.state === 'waiting' ? this.held.waiting : null;
  }

  /**
   * Apply an event with its data. Returns whether the table (and the data) allowed it.
   * @template {CallEvent} E
   * @param {E} event @param {EventArgs<Link>[E]} args
   */
  fire(event, ...args) {
    const from = this.held.state;
    const to = TRANSITIONS[from][event];
    const next = to ? this.next(event, args) : null;
    if (!to || !next) return false;
    this.held = Object.freeze(next);
    this.emit('state', { from, to, event });
    return true;
  }

  /**
   * The data after `event`, or null when it does not fit what is held.
   * @param {CallEvent} event @param {any[]} args
   * @returns {Held<Link> | null}
   */
  next(event, [a, b]) {
    const held = this.held;
    const group = this.group;
    const invites = this.invites;
    /** @param {ReadonlyMap<string, string>} people @returns {Held<Link>} */
    const stay = (people) => {
      if (!group) throw new Error('no call held'); // the table lists these events only with a call
      const waiting = this.waiting;
      if (waiting === null) return { state: 'member', group, invites: people };
      return { state: 'waiting', group, invites: people, waiting };
    };
    switch (event) {
      case 'invited':
        return { state: 'invitation', invitation: Object.freeze({ ...a }) };
      case 'accept':
        if (held.state !== 'invitation') return null;
        return { state: 'joining', joining: held.invitation.call, from: null };
      case 'join':
        return { state: 'joining', joining: a, from: b ?? null };
      case 'listed': {
        if (held.state === 'joining' && a.id !== held.joining) return null;
        if (group && a.id !== group.id) return null;
        const listed = frozenGroup(a);
        const still = new Map([...invites].filter(([id]) => !listed.members.includes(id)));
        const waiting = this.waiting;
        if (waiting === null) return { state: 'member', group: listed, invites: still };
        return { state: 'waiting', group: listed, invites: still, waiting };
      }
      case 'invite':
        if (!group || group.members.includes(a) || invites.has(a)) return null;
        return stay(new Map([...invites, [a, b]]));
      case 'uninvite':
        if (!invites.has(a)) return null;
        return stay(new Map([...invites].filter(([id]) => id !== a)));
      case 'wait':
        return group ? { state: 'waiting', group, invites, waiting: a } : null;
      case 'unwait':
        return group ? { state: 'member', group, invites } : null;
      case 'leave':
        return { state: 'leaving', group };
      default: // accepted above by the table: dismiss, join-failed, left, over
        return { state: 'idle' };
    }
  }
}
