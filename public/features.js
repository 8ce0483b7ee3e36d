// Everything past the lobby, loaded by public/app.js with `import()` once the people list
// is up: the camera and microphone, calls and group calls and their screen, data links
// with messages and files, verification (its guard is built into every connection), the
// spaces panel, missed calls, notifications, the installable app. `startFeatures` wires
// them to the lobby's objects and returns what the lobby hands over or asks.

import { CallController } from './calls/calls.js';
import { CallGuard } from './calls/callguard.js';
import { CallView } from './calls/callview.js';
import { ChatPanel } from './calls/chat.js';
import { contactFor, contactsNamed, noteSeen, seenFingerprint } from './verify/contacts.js';
import { ConversationStore, Messenger } from './data/conversations.js';
import { DataLinks } from './data/datalinks.js';
import { FileTransfers } from './data/files.js';
import { AddPeople, CallWaiting } from './calls/groupui.js';
import { Guard } from './verify/guard.js';
import { identity } from './verify/identity.js';
import { registerServiceWorker, sharedIntoApp } from './lobby/install.js';
import { Media } from './calls/media.js';
import { continueInCall, ConversationView } from './data/messageview.js';
import { LinkMeter } from './calls/meter.js';
import { MissedCalls } from './calls/missed.js';
import { CallNotifier } from './calls/notify.js';
import { ERROR, errorRoles, relayRole } from './core/protocol.js';
import { startRinging, stopRinging } from './calls/ring.js';
import { SpacesPanel } from './lobby/spaces.js';
import { StatsOverlay } from './calls/stats.js';
import { TransfersView } from './data/transfersui.js';
import { $ } from './core/dom.js';
import { Verification } from './verify/verifyview.js';

/**
 * @typedef {import('./core/protocol.js').Role} Role
 * @typedef {import('./core/protocol.js').RelayRole} RelayRole
 * @typedef {import('./core/roster.js').Person} Person
 * @typedef {{
 *   signalling: import('./core/signalling.js').Signalling, roster: import('./core/roster.js').Roster,
 *   lobby: import('./lobby/lobby.js').Lobby, nameField: import('./lobby/lobby.js').NameField,
 *   pageVersion: string | undefined, firstSpace: {code: string | null},
 *   reloadNow: (notice: string) => void,
 * }} Core what the lobby (public/app.js) made
 * @typedef {ReturnType<typeof startFeatures>} Features
 */

/** @param {Core} core */
export function startFeatures({ signalling, roster, lobby, nameField, reloadNow }) {
  const media = new Media();
  // Verification (docs/verification.md): every connection, call or data link, is built with
  // this guard, which holds one whose device is not the one verified for that person.
  const guard = new Guard(
    { contactFor, contactsNamed, seenFingerprint, noteSeen },
    () => identity()?.fingerprint || '',
  );
  const calls = new CallController(signalling, media, roster, guard);
  // Messages outside calls, over data links (docs/protocol.md §9).
  const dataLinks = new DataLinks(signalling, roster, guard);
  const messenger = new Messenger(dataLinks, new ConversationStore(), roster);
  // Files to anyone listed, over data links (docs/protocol.md §9.2).
  const files = new FileTransfers(dataLinks, roster.people);
  const conversation = new ConversationView(messenger, roster, (id) => calls.call(id));
  calls.on('call', () => conversation.close()); // a call (ringing too) takes the screen
  const chat = new ChatPanel();
  continueInCall(chat, messenger); // a 1:1 call's chat is the conversation with that person
  const stats = new StatsOverlay($('stats'));
  const addPeople = new AddPeople(calls, roster.people);
  const callWaiting = new CallWaiting();
  const callView = new CallView(
    media,
    chat,
    stats,
    () => calls.hangup(),
    {
      'add-people': () => {
        chat.close();
        callView.toggleMore(false);
        addPeople.toggle();
      },
      'close-add-people': () => addPeople.toggle(false),
      'waiting-add': () => calls.addWaiting(),
      'waiting-decline': () => calls.declineWaiting(),
      closeWaiting: () => callWaiting.hide(),
    },
    guard,
  );
  const meter = new LinkMeter(() => calls.inCall.filter((link) => link.pc));
  const transfersView = new TransfersView(files, roster, () => calls.inCall.map((link) => link.peerId));
  const missed = new MissedCalls(roster.people, (id) => calls.call(id));
  const notifier = new CallNotifier();
  let reloadPending = false;

  // Links to a space point at the address other devices open ("Invite a phone"), else this one.
  const inviteLink = /** @type {HTMLAnchorElement | null} */ (
    document.querySelector('[data-testid="invite-url"] a')
  );
  const spaces = new SpacesPanel(signalling, inviteLink ? new URL(inviteLink.href).origin : location.origin, {
    notice: (text) => lobby.notice(text),
    roster,
    changed: (code, required) => {
      lobby.emptyText = required
        ? 'This server lists people by space: create a space, or join one with the code someone gave you.'
        : code
          ? `Nobody here yet — if you expected someone, check the code ${code}. ` +
            `To bring people in, share its link or QR code under “Space ${code}”.`
          : '';
      lobby.paintEmpty();
    },
  });

  // Every frame the server sends goes to one role (public/core/protocol.js decides which).
  /** @type {Record<RelayRole, (type: string, data: any) => void>} */
  const relayHandlers = {
    call: (type, data) => calls.handle(type, data),
    data: (type, data) => dataLinks.handle(type, data),
    space: (_type, data) => spaces.followMove(data),
  };
  /**
   * @type {Record<Role, (error: {code: string, message?: string, ref?: string, target?: string}) => boolean>}
   */
  const errorHandlers = {
    data: (error) => dataLinks.serverError(error),
    call: (error) => calls.serverError(error),
    space: (error) => spaces.refused(error),
    name: (error) => nameField.refused(error),
  };
  /** @param {{code: string, message?: string, ref?: string, target?: string}} error */
  function serverError(error) {
    let handled = false;
    for (const role of errorRoles(error)) {
      if (!errorHandlers[role](error)) continue;
      handled = true;
      if (role !== 'data') break; // see errorRoles: calls hear a refused relay too
    }
    if (handled) return;
    if (error.code !== ERROR.RATE_LIMITED) lobby.notice(`The server refused a message (${error.code}).`);
    console.warn('server error', error);
  }

  calls.on('call', (call) => {
    if (!call.is('ringing')) {
      // they just placed a call: a sensible moment to offer notifications
      if (!callView.call) notifier.askOnce();
      return callView.show(call);
    }
    lobby.showIncoming(call);
    startRinging();
    notifier.incoming(call);
    call.during('state', () => {
      if (call.is('ringing')) return;
      stopRinging();
      lobby.hideIncoming();
      if (call.active && callView.call !== call) callView.show(call);
    });
  });

  // Group calls (docs/protocol.md §8): someone calling while we are in a call, invitations,
  // membership, and what the call's meter hears.
  calls.on('waiting', (call) => callWaiting.show(call));
  calls.on('invited', (invitation) => {
    lobby.showIncoming({ peerName: invitation.name, peerId: invitation.from }, invitation);
    startRinging();
  });
  calls.on('invitation-over', ({ notice }) => {
    stopRinging();
    lobby.hideIncoming();
    if (notice) lobby.notice(notice);
  });
  calls.on('group', () => addPeople.render());
  calls.on('inviting', () => addPeople.render());
  calls.on('notice', (text) => lobby.notice(text));
  meter.on('speaker', (peerId) => callView.setSpeaker(peerId));

  calls.on('ended', ({ call, reason, notice, last }) => {
    callWaiting.hide(call);
    if (!last && !callView.grid.tiles.has(call)) {
      if (notice) lobby.notice(notice); // a caller who waited, or an attempt no screen showed
      return;
    }
    if (last) {
      stopRinging();
      lobby.hideIncoming();
    }
    callView.remove(call);
    if (notice) lobby.notice(notice);
    if (reason === 'unavailable') roster.remove(call.peerId); // the server no longer knows them
    if (reloadPending && last) reloadNow(notice);
  });

  calls.on('missed', (call) => {
    missed.add(call);
    notifier.missed(call);
  });

  $('accept').onclick = () => {
    notifier.askOnce();
    calls.accept();
  };
  $('decline').onclick = () => calls.decline();

  media.on('change', () => lobby.renderMedia(media));
  $('lobby').addEventListener('click', (event) => {
    const action = /** @type {HTMLElement} */ (event.target)
      .closest('[data-action]')
      ?.getAttribute('data-action');
    if (action === 'mic') media.setMic(!media.micOn);
    if (action === 'camera') media.setCamera(!media.cameraOn);
    if (action === 'retry-media') media.retry();
  });
  for (const select of /** @type {NodeListOf<HTMLSelectElement>} */ (
    document.querySelectorAll('select[data-kind]')
  )) {
    select.onchange = () =>
      select.value && media.use(select.dataset.kind === 'camera' ? 'camera' : 'mic', select.value);
  }

  new CallGuard(calls, signalling); // after the `ended` handler above: it must see a pending reload

  // Verified contacts (docs/verification.md): the code, the badge, the warning, the contacts card.
  new Verification(calls, () => {
    lobby.renderPeople(roster.people);
    lobby.repaintIncoming();
    callView.paint();
  });
  media.start();
  // Installable (public/sw.js); files shared in from the system share sheet ask whom to send to.
  registerServiceWorker(document.body.dataset.version || 'dev');
  sharedIntoApp().then(({ files: shared, notice }) => {
    if (notice) lobby.notice(notice);
    if (shared.length) transfersView.askWhom(shared);
  });
  // Everyone listed before we were here; a call our reload cut is picked up again.
  for (const person of roster.people.values()) {
    personChanged(person);
    calls.rejoinAfterReload(person.id);
  }

  /**
   * The list changed: "Call back" and a call, link or transfer with that person follow.
   * @param {Person} person
   */
  function personChanged(person) {
    missed.render();
    calls.personChanged(person);
    dataLinks.personChanged(person);
    files.personChanged(person);
    conversation.paintPeople();
    addPeople.render();
  }

  return {
    media,
    calls,
    dataLinks,
    messenger,
    files,
    personChanged,
    /** Someone new is listed. @param {Person} person */
    personAdded(person) {
      calls.rejoinAfterReload(person.id); // our reload cut a call with them: pick it up again
    },
    /** A frame from the server for a role here. @param {string} type @param {any} detail */
    hear(type, detail) {
      if (type === 'error') serverError(detail);
      else relayHandlers[relayRole(detail.type, detail.data)](detail.type, detail.data);
    },
    /** A new version is ready: whether it waits for the call to end (else reload now). */
    updateReady() {
      if (!calls.active) return false;
      if (!reloadPending) lobby.notice('An update is ready. The page will refresh after this call.');
      reloadPending = true;
      return true;
    },
    inCall() {
      return calls.inCall.some((link) => link.is('connected', 'reconnecting'));
    },
    /** The page is going away (`persisted`: into the back/forward cache). @param {boolean} persisted */
    pageHidden(persisted) {
      calls.leave();
      if (!persisted) dataLinks.closeAll();
    },
  };
}
