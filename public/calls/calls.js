// Call control: one peer link per remote person (an id-keyed map), and what each call
// message means right now (ring, busy, call waiting, glare, renegotiation), group-call
// membership (docs/protocol.md §8: `call`, `invite`, `join`, `leave-call`), ring
// timeouts, and the words people see when a call ends. What concerns the whole call
// (membership, invitations, `join`, call waiting) is one transition table, public/calls/callstate.js.

import { CallState } from './callstate.js';
import { callMessages } from '../connection/channels.js';
import { isPolite } from '../connection/connection.js';
import { Emitter } from '../core/events.js';
import { listNames, mayAdoptCall, videoBudget } from './grouplogic.js';
import { PeerLink } from './peerlink.js';
import { endOnDisconnect, followRemoteHold, followRemoteMedia } from './peermessages.js';
import { ERROR } from '../core/protocol.js';

/**
 * @typedef {{id: string, name: string, kind: string, remove?: boolean, inCall?: boolean}} Person
 * @typedef {{reason: string, by: 'local' | 'remote', from: string}} Ending
 * @typedef {import('./callstate.js').GroupCall} GroupCall the call we are a member of, as the server lists it
 * @typedef {import('./callstate.js').Invitation} Invitation
 */

const CALLEE_RING_SLACK_MS = 5000; // the caller's own timeout normally ends the ring first
/**
 * A reload cut our 1:1 call: the page that comes back calls again within this
 * (the server's rejoin window).
 */
export const REJOIN_MS = 10000;
const REJOIN_KEY = 'lanCall.rejoin'; // sessionStorage: a reload keeps it, a closed tab does not
/** Endings nobody needs to hear about: the call goes on in another form. */
const QUIET = new Set(['glare', 'joining']);

/**
 * Events: `call` (a PeerLink's call is starting, ringing, or joins the call screen),
 * `waiting` (a PeerLink: someone calls while we are in a call), `ended` ({call, reason,
 * notice, last}: `last` when no call is left), `missed` ({peerId, name, reason}),
 * `group` (GroupCall | null: membership changed), `invited` (Invitation),
 * `invitation-over` ({notice}), `inviting` (the set of people invited changed),
 * `notice` (a sentence about the group call).
 */
export class CallController extends Emitter {
  /**
   * @param {import('../core/signalling.js').Signalling} signalling
   * @param {import('./media.js').Media} media
   * @param {{get(id: string): Person | undefined}} people who is listed now (the roster)
   * @param {import('../verify/guard.js').Guard} guard checks every connection (public/verify/guard.js)
   */
  constructor(signalling, media, people, guard) {
    super();
    if (!guard) throw new TypeError('Calls need the verification guard.');
    /** Checks every call's connection (public/verify/guard.js). */
    this.guard = guard;
    this.signalling = signalling;
    this.media = media;
    this.people = people;
    /** What calls' data channels speak (docs/protocol.md §6), one registry for all their links. */
    this.messageTypes = callMessages();
    /** @type {Map<string, PeerLink>} one link per remote person, by peer id; idle between calls */
    this.links = new Map();
    /**
     * The call beyond single links (public/calls/callstate.js): our group call, the invitation
     * ringing here, our `join`, our invitations, the caller waiting. Only its events change them.
     * @type {CallState<PeerLink>}
     */
    this.callState = new CallState();
    // PeerLink.waiting mirrors it for code that holds a link, not the controller (verify.js).
    this.callState.on('state', () => {
      for (const link of this.links.values()) link.waiting = link.peerId === this.callState.waiting;
    });
    /**
     * @type {{peerId: string, at: number} | null} a connected 1:1 call the other side's page left
     * (a reload comes back)
     */
    this.cutByReload = null;
    /** @type {{peerId: string, at: number} | null} the call our own reload cut: read once, at start */
    this.pendingRejoin = null;
    try {
      const saved = JSON.parse(sessionStorage.getItem(REJOIN_KEY) || 'null');
      sessionStorage.removeItem(REJOIN_KEY);
      if (saved && typeof saved.peerId === 'string') this.pendingRejoin = saved;
    } catch {
      /* storage off, or not ours */
    }
    media.on('trackchange', ({ kind, track }) => this.eachActive((link) => link.replaceTrack(kind, track)));
    media.on('change', () => this.eachActive((link) => link.mediaChanged()));
    addEventListener('online', () => this.eachActive((link) => link.networkChanged()));
  }

  /** @returns {GroupCall | null} the call we are a member of (or are leaving) */
  get group() {
    return this.callState.group;
  }

  /** @returns {string | null} we sent `join` for this call and wait for its member list */
  get joining() {
    return this.callState.joining;
  }

  /** @returns {PeerLink | null} the attempt we were making when the person we called added us */
  get joinedFrom() {
    return this.callState.from;
  }

  /** @returns {Readonly<Invitation> | null} an invitation ringing here */
  get invitation() {
    return this.callState.invitation;
  }

  /** @returns {ReadonlyMap<string, string>} people we invited who have not answered: id -> name */
  get invited() {
    return this.callState.invites;
  }

  /** Targets of our invites, oldest first: a refusal names none (docs/protocol.md §3). */
  get inviteOrder() {
    return [...this.callState.invites.keys()];
  }

  /** The first link in the call (or calling, or ringing); a caller waiting comes last. */
  get current() {
    return this.inCall[0] || this.waitingLink;
  }

  /** Links in the call, including ones still calling or connecting; not a caller waiting. */
  get inCall() {
    const waiting = this.callState.waiting;
    return [...this.links.values()].filter((link) => link.active && link.peerId !== waiting);
  }

  /** Someone calling while we are in a call, or null. */
  get waitingLink() {
    const waiting = this.callState.waiting;
    const link = waiting === null ? undefined : this.links.get(waiting);
    return link?.active ? link : null;
  }

  get active() {
    return this.current !== null;
  }

  get maxCallSize() {
    return this.signalling.config?.maxCallSize || 6;
  }

  /** @param {(link: PeerLink) => void} action */
  eachActive(action) {
    for (const link of this.links.values()) if (link.active) action(link);
  }

  /** @param {string} id */
  nameOf(id) {
    return this.people.get(id)?.name || this.links.get(id)?.peerName || 'Someone';
  }

  /**
   * The user tapped a person (or our reload cut our call with them).
   * @param {string} peerId @param {boolean} [rejoin]
   */
  call(peerId, rejoin = false) {
    const person = this.people.get(peerId);
    if (this.active || this.callState.is('invitation') || !person) return;
    const link = this.linkFor(person.id, person.name);
    if (!link.dial(this.setup(peerId))) return;
    link.rejoining = rejoin;
    // The offer first: the browser makes it while the call screen is drawn.
    link.start().catch(link.failure());
    this.emit('call', link);
    this.ring(link, 'calling', () => link.hangup('timeout'), 0);
  }

  accept() {
    if (this.callState.is('invitation')) return this.acceptInvitation();
    const link = this.current;
    if (!link?.is('ringing') || link === this.waitingLink) return;
    link.timers.clear('ring');
    link.accept().catch(link.failure());
  }

  decline() {
    if (this.callState.is('invitation')) return this.declineInvitation('declined');
    const link = this.current;
    if (link?.is('ringing') && link !== this.waitingLink) link.decline('declined');
  }

  /** Cancel while calling, hang up in a call; in a group call, leave it (the others carry on). */
  hangup() {
    if (this.isGroupCall()) return this.leaveGroup('hangup');
    const link = this.current;
    if (link?.is('ringing')) link.decline('declined');
    else link?.hangup(link.is('calling') ? 'cancelled' : 'hangup');
  }

  /** The page is going away: the peers hear "left", whatever state the call is in. */
  leave() {
    if (this.callState.is('invitation')) this.declineInvitation('left');
    if (this.isGroupCall()) return this.leaveGroup('left');
    const link = this.current;
    if (link?.is('connected', 'reconnecting') && link !== this.waitingLink) {
      // A reload comes back (same tab, same id) and picks the call up again; a closed tab
      // loses sessionStorage, and nothing is called.
      try {
        sessionStorage.setItem(REJOIN_KEY, JSON.stringify({ peerId: link.peerId, at: Date.now() }));
      } catch {
        /* storage off */
      }
    }
    if (link?.is('ringing')) link.decline('left');
    else link?.hangup('left');
  }

  /** More than one person on the line, or a call the server already counts as a group. */
  isGroupCall() {
    const links = this.inCall;
    return links.length > 1 || (this.group !== null && links.some((link) => link.callId));
  }

  /**
   * Leave the group call: every link hangs up (the data-channel `disconnect` arrives even
   * without the server), then `leave-call` tells the server; the others carry on.
   * @param {string} reason
   */
  leaveGroup(reason) {
    for (const id of this.inviteOrder) this.withdrawInvite(id); // nobody joins a call we left
    this.waitingLink?.decline('busy');
    const group = this.group;
    this.callState.fire('leave'); // the links' endings below are ours, not news
    try {
      for (const link of this.inCall) link.hangup(link.is('calling') ? 'cancelled' : reason);
    } finally {
      this.callState.fire('left');
    }
    if (group) this.signalling.send('leave-call', { call: group.id });
    this.emit('group', null);
  }

  /** A relayed message from the server. @param {string} type @param {any} data */
  handle(type, data) {
    if (type === 'call') return this.callChanged(data);
    if (type === 'invite') return this.invitedBy(data);
    const from = type === 'icecandidate' ? data.id : data.source;
    if (typeof from !== 'string') return;
    if (type === 'offer')
      return this.offer(
        from,
        data.sdp,
        typeof data.call === 'string' ? data.call : null,
        data.rejoin === true,
      );
    const link = this.links.get(from);
    if (type === 'reject' && typeof data.call === 'string' && this.invited.has(from)) {
      return this.inviteAnswered(from, String(data.reason || 'declined'));
    }
    if (type === 'hangup' && this.invitation?.from === from) {
      return this.invitationWithdrawn(String(data.reason || ''));
    }
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

  /**
   * Back after a reload (the same id, within REJOIN_MS): call the person our call was with
   * again; their page picks it up without a ring (docs/protocol.md §7, "Rejoin").
   */
  rejoinAfterReload(/** @type {string} */ listedId) {
    const saved = this.pendingRejoin;
    if (!saved || saved.peerId !== listedId) return false;
    this.pendingRejoin = null;
    if (!(Date.now() - Number(saved.at) < REJOIN_MS)) return false;
    this.call(saved.peerId, true);
    return this.active;
  }

  /** @param {string} from @param {unknown} sdp @param {string | null} callId @param {boolean} [rejoin] */
  offer(from, sdp, callId, rejoin = false) {
    if (typeof sdp !== 'string') return;
    const known = this.links.get(from);
    if (known?.active && known !== this.waitingLink) return this.offerFromLinked(known, from, sdp);
    if (known?.active) return; // a caller waiting offers again: still waiting
    if (callId !== null) {
      // A member joining our call offers to each of us: answered at once, no ring. An
      // offer for a call we are not in was refused by the server; nothing to do.
      if (this.group?.id === callId && this.group.members.includes(from))
        this.incoming(from, sdp, true, callId);
      return;
    }
    if (!this.active && !this.callState.is('invitation')) {
      // Their page reloaded in the middle of our call with them, moments ago: the call
      // goes on without a second "Accept" (the same person, the same id, which only their
      // tab's resume token can claim; the verification guard still checks the device).
      const cut = this.cutByReload;
      const resumes = rejoin && cut?.peerId === from && Date.now() - cut.at < REJOIN_MS;
      this.cutByReload = null;
      return this.incoming(from, sdp, resumes);
    }
    if (this.canWait()) return this.waiting(from, sdp);
    // In a call that is full, say so: "in another call" would suggest trying again later.
    this.send('reject', { target: from, reason: this.isFull() ? 'full' : 'busy' });
    this.emit('missed', { peerId: from, name: this.nameOf(from), reason: 'busy' });
  }

  /** @param {PeerLink} link @param {string} from @param {string} sdp */
  offerFromLinked(link, from, sdp) {
    if (link.is('calling')) {
      // Both called each other at once (docs/protocol.md §7): the smaller id drops its own
      // attempt silently and takes the other's call; the larger id ignores this offer.
      if (isPolite(this.signalling.id || '', from)) {
        link.end('glare', 'local');
        this.incoming(from, sdp, true);
      }
    } else if (!link.is('ringing')) {
      link.handle('offer', { sdp }); // renegotiation from the peer already in the call
    }
  }

  /**
   * Call waiting is offered while we are in a connected call we could add the caller to:
   * a call the server tracks (we know its id), not full, nobody else waiting or invited
   * here. Otherwise the caller hears "busy" at once, as before group calls.
   */
  canWait() {
    const group = this.group;
    if (!this.callState.is('member') || !group?.members.includes(this.signalling.id || '')) return false;
    if (!this.inCall.some((link) => link.is('connected', 'reconnecting'))) return false;
    return group.members.length + this.invited.size < this.maxCallSize;
  }

  /** Our call has as many members and invitations as it may (no one more can be added). */
  isFull() {
    const group = this.group;
    return !!group && group.members.length + this.invited.size >= this.maxCallSize;
  }

  /**
   * Someone calls while we are in a call: they wait, and we choose (add them, or busy).
   * @param {string} from @param {string} sdp
   */
  waiting(from, sdp) {
    const link = this.linkFor(from, this.nameOf(from));
    // Waiting before the link rings, so that it never counts as in the call.
    if (!this.callState.fire('wait', from)) return;
    if (!link.offered(sdp, this.setup(from))) {
      this.callState.fire('unwait');
      return;
    }
    this.send('ringing', { target: from });
    this.emit('waiting', link);
    this.ring(link, 'ringing', () => link.decline('timeout'), CALLEE_RING_SLACK_MS);
  }

  /** "Add to this call": the waiting caller is invited; their app joins at once. */
  addWaiting() {
    const link = this.waitingLink;
    if (!link?.is('ringing') || !this.group) return;
    const id = link.peerId;
    link.end('added', 'local'); // its connection is dropped; their join brings a fresh one
    this.invite(id);
  }

  /** "Decline": the waiting caller is told we are busy. */
  declineWaiting() {
    this.waitingLink?.decline('busy');
  }

  /** @param {string} from @param {string} sdp @param {boolean} answerNow @param {string | null} [callId] */
  incoming(from, sdp, answerNow, callId = null) {
    const link = this.linkFor(from, this.nameOf(from));
    link.callId = callId;
    if (callId) link.budget = videoBudget(this.remoteCount());
    if (!link.offered(sdp, this.setup(from))) return;
    if (answerNow)
      link.accept().catch(link.failure()); // 'connecting' at once: no ring
    else this.send('ringing', { target: from }); // the caller's "Calling…" becomes "Ringing…"
    this.emit('call', link);
    this.ring(link, 'ringing', () => link.decline('timeout'), CALLEE_RING_SLACK_MS);
    if (callId) this.applyBudgets();
  }

  // --- group calls (docs/protocol.md §8) ---------------------------------------------

  /** A `call` message: the members of our call now (or that it is over for us). @param {any} data */
  callChanged(data) {
    const id = typeof data.id === 'string' ? data.id : '';
    const members = Array.isArray(data.members)
      ? /** @type {unknown[]} */ (data.members).filter((m) => typeof m === 'string')
      : [];
    const me = this.signalling.id || '';
    if (!id) return;
    if (data.ended || !members.includes(me)) {
      if (this.joining === id) this.joinFailed('The call ended before you joined.');
      if (this.group?.id === id) this.groupOver();
      return;
    }
    const consented = (/** @type {string} */ peerId) => {
      const link = this.links.get(peerId);
      return !!link?.active && link !== this.waitingLink && !link.is('ringing'); // dialled, or answered here
    };
    if (!mayAdoptCall({ id, members, me, group: this.group?.id ?? null, joining: this.joining, consented }))
      return;
    const joined = this.callState.is('joining');
    const invitedBefore = this.invited.size;
    if (!this.callState.fire('listed', { id, members })) return;
    this.emit('group', this.group);
    if (this.invited.size !== invitedBefore) this.emit('inviting', this.invited); // a newcomer was invited
    // A member who left: close that pair's link (the others carry on).
    for (const link of this.inCall) {
      const gone = !members.includes(link.peerId);
      if (gone && (link.callId === id || link.is('connected', 'reconnecting'))) link.end('left', 'remote');
    }
    if (joined) {
      // We joined: we offer to every other member (the joiner offers, so no glare).
      for (const member of members) if (member !== me) this.dialMember(member, id);
    }
    this.applyBudgets();
  }

  /**
   * The server ended our call for us, or our last link ended: a caller waiting has nothing
   * left to be added to.
   */
  groupOver() {
    this.waitingLink?.decline('busy');
    this.callState.fire('over');
    this.emit('group', null);
  }

  /** Offer to a member of the call we joined. @param {string} peerId @param {string} callId */
  dialMember(peerId, callId) {
    const link = this.linkFor(peerId, this.nameOf(peerId));
    if (link.active) return;
    link.callId = callId;
    link.budget = videoBudget(this.remoteCount());
    if (!link.dial(this.setup(peerId))) return;
    this.emit('call', link);
    link.start().catch(link.failure());
    this.ring(link, 'calling', () => link.hangup('timeout'), 0); // a member answers at once, or never
  }

  /** How many people we send video to: the other members, or the links when the server keeps no call. */
  remoteCount() {
    const members = this.group ? this.group.members.length - 1 : 0;
    return Math.max(members, this.inCall.length, 1);
  }

  /** Each sender scales its video with the size of the call (docs/architecture.md, bandwidth). */
  applyBudgets() {
    const budget = videoBudget(this.remoteCount());
    for (const link of this.inCall) {
      if (link.budget.maxBitrate !== budget.maxBitrate || link.budget.maxHeight !== budget.maxHeight)
        link.setBudget(budget);
    }
  }

  /** Ask someone to join our call ("Add people"). @param {string} peerId */
  invite(peerId) {
    const group = this.group;
    if (!group || !this.callState.fire('invite', peerId, this.nameOf(peerId))) return;
    this.signalling.send('invite', { target: peerId, call: group.id });
    this.emit('inviting', this.invited);
    // Their app answers within its ring time; a lost answer must not hold a place forever.
    const timeout = (this.signalling.config?.ringTimeoutMs || 30000) + 2 * CALLEE_RING_SLACK_MS;
    setTimeout(() => this.forgetInvite(peerId), timeout);
  }

  /**
   * Take back an invitation that still rings (tapped again in "Add people", or we leave).
   * @param {string} peerId
   */
  withdrawInvite(peerId) {
    const group = this.group;
    if (!group || !this.invited.has(peerId)) return;
    this.send('hangup', { target: peerId, call: group.id, reason: 'cancelled' });
    this.forgetInvite(peerId);
  }

  /** @param {string} peerId */
  forgetInvite(peerId) {
    if (this.callState.fire('uninvite', peerId)) this.emit('inviting', this.invited);
  }

  /**
   * The person we invited declined (or was busy, or did not answer).
   * @param {string} from @param {string} reason
   */
  inviteAnswered(from, reason) {
    const name = this.invited.get(from) || this.nameOf(from);
    this.forgetInvite(from);
    const words = {
      declined: `${name} declined to join`,
      busy: `${name} is busy`,
      timeout: `No answer from ${name}`,
      left: `${name} left`,
    };
    this.emit('notice', words[/** @type {keyof typeof words} */ (reason)] || `${name} didn’t join`);
  }

  /** An `invite` arrived. @param {any} data */
  invitedBy(data) {
    const from = data.source;
    const callId = data.call;
    if (typeof from !== 'string' || typeof callId !== 'string') return;
    const members = Array.isArray(data.members)
      ? /** @type {unknown[]} */ (data.members).filter((m) => typeof m === 'string')
      : [];
    const calling = this.links.get(from);
    const ours = calling?.is('calling') && !calling.callId && this.inCall.length === 1;
    if (calling && ours && this.callState.fire('join', callId, calling)) {
      // We were calling them and they chose "Add to this call": our own attempt ends
      // quietly and we join theirs (docs/protocol.md §8, call waiting).
      calling.end('joining', 'local');
      this.signalling.send('join', { call: callId });
      return;
    }
    if (this.active || !this.callState.is('idle')) {
      this.send('reject', { target: from, reason: 'busy', call: callId });
      this.emit('missed', { peerId: from, name: this.nameOf(from), reason: 'busy' });
      return;
    }
    const name = this.nameOf(from);
    // Who else is there: not us, and not the inviter, who is named first already.
    const others = members.filter((m) => m !== this.signalling.id && m !== from).map((m) => this.nameOf(m));
    const withWhom = listNames(others); // '' when the inviter is the only one there
    const text = others.length
      ? `${name} invites you to a call with ${listNames(others)}`
      : `${name} invites you to a call`;
    const timeout = (this.signalling.config?.ringTimeoutMs || 30000) + CALLEE_RING_SLACK_MS;
    const timer = setTimeout(() => this.declineInvitation('timeout'), timeout);
    this.callState.fire('invited', { from, name, call: callId, members, text, others: withWhom, timer });
    this.emit('invited', this.invitation);
  }

  acceptInvitation() {
    const invitation = this.endInvitation('accept', '');
    if (invitation) this.signalling.send('join', { call: invitation.call });
  }

  /** @param {'declined' | 'timeout' | 'left' | 'busy'} reason */
  declineInvitation(reason) {
    const invitation = this.invitation;
    if (!invitation) return;
    this.send('reject', { target: invitation.from, reason, call: invitation.call });
    const missed = reason === 'timeout';
    this.endInvitation('dismiss', missed ? `Missed call from ${invitation.name}` : '');
    if (missed) this.emit('missed', { peerId: invitation.from, name: invitation.name, reason });
  }

  /** The inviter took the invitation back, or left. @param {string} [reason] */
  invitationWithdrawn(reason = 'left') {
    const invitation = this.invitation;
    if (!invitation) return;
    const { name } = invitation;
    const notice =
      reason === 'cancelled' ? `${name} cancelled the invitation` : `${name} left before you answered`;
    this.endInvitation('dismiss', notice);
  }

  /**
   * The invitation stops ringing: accepted (we join), or dismissed.
   * @param {'accept' | 'dismiss'} event @param {string} notice
   */
  endInvitation(event, notice) {
    const invitation = this.invitation;
    if (!invitation || !this.callState.fire(event)) return null;
    clearTimeout(invitation.timer);
    this.emit('invitation-over', { notice });
    return invitation;
  }

  /** @param {string} notice */
  joinFailed(notice) {
    const link = this.joinedFrom;
    this.callState.fire('join-failed');
    // The screen still shows the attempt that led here: it ends now, with the reason.
    if (link && !link.active)
      this.emit('ended', { call: link, reason: 'error', notice, last: !this.inCall.length });
    else this.emit('notice', notice);
  }

  /**
   * @param {PeerLink} link @param {import('../connection/linkstate.js').LinkStateName} state
   * @param {() => void} giveUp @param {number} slack
   */
  ring(link, state, giveUp, slack) {
    const timeout = this.signalling.config?.ringTimeoutMs || 30000;
    link.timers.schedule('ring', () => link.is(state) && giveUp(), timeout + slack);
  }

  /** What a new call with `peerId` starts with. @param {string} peerId */
  setup(peerId) {
    return {
      polite: isPolite(this.signalling.id || '', peerId),
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
    const link = new PeerLink({
      peerId,
      peerName,
      messageTypes: this.messageTypes,
      guard: this.guard,
      signal: (type, data) => this.send(type, data),
    });
    this.links.set(peerId, link);
    followRemoteMedia(link);
    followRemoteHold(link);
    endOnDisconnect(link);
    link.on('ended', (/** @type {Ending} */ ending) => this.linkEnded(link, ending));
    return link;
  }

  /** @param {PeerLink} link @param {Ending} ending */
  linkEnded(link, ending) {
    const wasWaiting = this.callState.waiting === link.peerId;
    if (wasWaiting) this.callState.fire('unwait');
    const wasConnected = ['connected', 'reconnecting'].includes(ending.from);
    this.cutByReload =
      ending.reason === 'left' && ending.by === 'remote' && wasConnected && !wasWaiting && !this.inCall.length
        ? { peerId: link.peerId, at: Date.now() }
        : null;
    if (QUIET.has(ending.reason)) return;
    if (link.direction === 'incoming' && ending.from === 'ringing' && wasMissed(ending)) {
      this.emit('missed', { peerId: link.peerId, name: link.peerName, reason: ending.reason });
    }
    const others = this.inCall;
    const last = !wasWaiting && others.length === 0;
    let notice;
    if (wasWaiting)
      notice =
        ending.by === 'local' && ['busy', 'added'].includes(ending.reason) ? '' : describeEnd(link, ending);
    else if (this.callState.is('leaving')) notice = last ? 'You left the call' : '';
    else if (!last && ['hangup', 'left', 'gone'].includes(ending.reason))
      notice = `${link.peerName} left the call`;
    else notice = describeEnd(link, ending);
    if (last) {
      this.waitingLink?.decline('busy'); // nothing left to add them to
      // Our last link is gone (lost, failed): the server must not keep counting us in.
      const group = this.callState.is('member', 'waiting') ? this.group : null;
      if (group) {
        this.signalling.send('leave-call', { call: group.id });
        this.groupOver();
      }
    } else {
      this.applyBudgets();
    }
    this.emit('ended', { call: link, reason: ending.reason, notice, last });
  }

  /**
   * Sender fields are filled in for old clients; the server overwrites them anyway.
   * @param {string} type @param {object} data
   */
  send(type, data) {
    const me = this.signalling.id;
    this.signalling.send(type, { ...data, [type === 'icecandidate' ? 'id' : 'source']: me });
  }

  /** Someone was renamed or left. @param {Person} person */
  personChanged(person) {
    if (person.remove && this.invitation?.from === person.id) this.invitationWithdrawn();
    if (person.remove) this.forgetInvite(person.id);
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
   * A server `error`: true if it was about calls (handled here): a peer who is gone or
   * away, or a refused group-call message.
   * Only a lost invitation or answer ends the call; a stray candidate or hang-up does not.
   * @param {{code: string, ref?: string, target?: string}} error
   */
  serverError({ code, ref, target }) {
    if (ref === 'invite') return this.inviteRefused(code, target);
    if (ref === 'join') {
      this.joinFailed(code === ERROR.CALL_FULL ? 'This call is full' : 'That call is over.');
      return true;
    }
    if (ref === 'leave-call' || code === ERROR.NOT_IN_CALL) return true; // left already, or they did
    if (ref === 'accept' && code === ERROR.NOT_INVITED) {
      // Our answer came after their offer stopped ringing (or they hung up meanwhile).
      const link = target === undefined ? this.current : this.links.get(target);
      if (link?.is('connecting') && link.direction === 'incoming') link.end('expired', 'local');
      return true;
    }
    const link = target === undefined ? this.current : this.links.get(target);
    if (code === ERROR.PEER_AWAY || code === ERROR.UNDELIVERED) {
      // Their socket is gone: say so now rather than ring into the void. The hang-up is
      // held with the offer, so if they come back they see a missed call, not a ring.
      // (A member of our group call gets the offer on their resume: no ring to cut short.)
      if (ref === 'offer' && link?.is('calling') && !link.callId) link.hangup('cancelled', 'unreachable');
      return true;
    }
    if (code !== ERROR.UNKNOWN_PEER) return false;
    // the server may not name the target of an unknown peer
    const call = target === undefined ? this.current : link;
    if ((ref === 'offer' && call?.is('calling')) || (ref === 'accept' && call?.is('connecting'))) {
      call.end('unavailable', 'local');
    }
    return true;
  }

  /** @param {string} code @param {string | undefined} target */
  inviteRefused(code, target) {
    const id = target || this.inviteOrder[0] || '';
    const name = this.invited.get(id) || this.nameOf(id);
    const wasInvited = this.invited.has(id);
    this.forgetInvite(id);
    /** @type {Record<string, string>} */
    const words = {
      [ERROR.CALL_FULL]: 'This call is full',
      [ERROR.UNSUPPORTED]: `${name}’s app can’t join group calls`,
      [ERROR.UNKNOWN_PEER]: `${name} is no longer here`,
      [ERROR.PEER_AWAY]: `${name} isn’t reachable right now`,
      [ERROR.UNDELIVERED]: `${name} isn’t reachable right now`,
      [ERROR.NOT_IN_CALL]: 'You are no longer in this call',
      [ERROR.BAD_MESSAGE]: `${name} is already in this call`,
    };
    if (wasInvited || words[code]) this.emit('notice', words[code] || `Couldn’t add ${name} (${code})`);
    return true;
  }
}

/**
 * An incoming call that stopped ringing without an answer: missed, unless we declined it,
 * added the caller to our call, or our own page was going away. @param {Ending} ending
 */
export function wasMissed({ reason, by }) {
  return !(by === 'local' && (reason === 'declined' || reason === 'left' || reason === 'added'));
}

/** @param {PeerLink} call @param {Ending} ending */
export function describeEnd(call, { reason, by, from }) {
  const who = call.peerName;
  const took = call.connectedAt ? ` · ${formatDuration((Date.now() - call.connectedAt) / 1000)}` : '';
  if (from === 'ringing') {
    if (by === 'local')
      return reason === 'timeout' ? `Missed call from ${who}` : `You declined ${who}’s call`;
    return reason === 'left' ? `${who} left before you answered` : `Missed call from ${who}`;
  }
  /** @type {Record<string, string | undefined>} */
  const local = {
    timeout: `No answer from ${who}`,
    cancelled: 'Call cancelled',
    unavailable: `${who} is no longer here`,
    unreachable: `${who} isn’t reachable right now`,
    expired: `${who}’s call had already ended`,
    failed: `Lost the connection to ${who}`,
    error: `The call with ${who} could not be set up`,
  };
  /** @type {Record<string, string | undefined>} */
  const remote = {
    declined: `${who} declined the call`,
    busy: `${who} is in another call`,
    full: `${who} is in a call that is full`,
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
