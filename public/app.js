// LAN Call: wires the signalling socket, local media, call control and the screens together.

import { CallController } from './calls.js';
import { CallGuard } from './callguard.js';
import { unlisted } from './contacts.js';
import { watchLink } from './linkbanner.js';
import { ServerChip } from './serverchip.js';
import { MissedCalls } from './missed.js';
import { Roster } from './roster.js';
import { CallNotifier } from './notify.js';
import { CallView } from './callview.js';
import { ChatPanel } from './chat.js';
import { ConversationStore, Messenger } from './conversations.js';
import { DataLinks } from './datalinks.js';
import { FileTransfers } from './files.js';
import { TransfersView } from './transfersui.js';
import { registerServiceWorker, sharedIntoApp } from './install.js';
import { continueInCall, ConversationView } from './messageview.js';
import { AddPeople, CallWaiting } from './groupui.js';
import { LinkMeter } from './meter.js';
import { Media } from './media.js';
import { loadName } from './names.js';
import { startRinging, stopRinging } from './ring.js';
import { Signalling } from './signalling.js';
import { SpacesPanel, startingSpace } from './spaces.js';
import { StatsOverlay } from './stats.js';
import { identityReady } from './identity.js';
import { Verification } from './verify.js';
import { $, Lobby, NameField } from './ui.js';
import { ERROR, errorRoles, relayRole } from './protocol.js';
/** @typedef {import('./protocol.js').Role} Role */
/** @typedef {import('./protocol.js').RelayRole} RelayRole */

const pageVersion = document.body.dataset.version;
/** @type {import('./signalling.js').ServerConfig} */
const pageConfig = JSON.parse(document.body.dataset.config || '{}');
const maxName = () => signalling.config.maxNameLength || 64;

const roster = new Roster();
const signalling = new Signalling(loadName(pageConfig.maxNameLength || 64), pageConfig);
// Spaces (docs/protocol.md §11): a link's ?space= (taken out of the address bar, so leaving
// the space sticks across a reload) or the one remembered on this device.
const firstSpace = startingSpace(location.search, window.localStorage);
signalling.space = firstSpace.code;
if (firstSpace.linked !== null) {
  const address = new URL(location.href);
  address.searchParams.delete('space');
  history.replaceState(history.state, '', address);
}
const media = new Media();
const calls = new CallController(signalling, media, roster);
const lobby = new Lobby((id) => calls.call(id));
// Messages outside calls, over data links (docs/protocol.md §9).
const dataLinks = new DataLinks(signalling, roster);
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
const callView = new CallView(media, chat, stats, () => calls.hangup(), {
  'add-people': () => {
    chat.close();
    callView.toggleMore(false);
    addPeople.toggle();
  },
  'close-add-people': () => addPeople.toggle(false),
  'waiting-add': () => calls.addWaiting(),
  'waiting-decline': () => calls.declineWaiting(),
  closeWaiting: () => callWaiting.hide(),
});
const meter = new LinkMeter(() => calls.inCall.filter((link) => link.pc));
const transfersView = new TransfersView(files, roster, () => calls.inCall.map((link) => link.peerId));
const missed = new MissedCalls(roster.people, (id) => calls.call(id));
const notifier = new CallNotifier();
const NOTICE_KEY = 'lanCall.notice'; // the end-of-call message, carried over an update reload
let reloadPending = false;

signalling.on('state', (state) => lobby.setStatus(state));

// Links to a space point at the address other devices open ("Invite a phone"), else this one.
const inviteLink = /** @type {HTMLAnchorElement | null} */ (document.querySelector('[data-testid="invite-url"] a'));
const spaces = new SpacesPanel(signalling, inviteLink ? new URL(inviteLink.href).origin : location.origin, {
  notice: (text) => lobby.notice(text),
  roster,
  changed: (code, required) => {
    lobby.emptyText = required
      ? 'This server lists people by space: create a space, or join one with the code someone gave you.'
      : code ? `Nobody here yet — if you expected someone, check the code ${code}. To bring people in, share its link or QR code under “Space ${code}”.` : '';
    lobby.paintEmpty();
  },
});
if (firstSpace.bad) lobby.notice(`“${firstSpace.linked}” in that link is not a space code, so you are where you were before.`);

signalling.on('ready', ({ version, reconnected }) => {
  performance.mark('lan-call:ready');
  if (version && version !== pageVersion) {
    // A new version of the app: reload now, or after the call rather than cut it off.
    if (!calls.active) return reloadNow('');
    if (!reloadPending) lobby.notice('An update is ready. The page will refresh after this call.');
    reloadPending = true;
  } else if (reconnected) {
    roster.reconnected(); // whoever is not listed again soon has left
  }
});

signalling.on('peer', (data) => roster.listed(data));

/** The list changed: the lobby, "Call back" and a call with that person follow. @param {import('./roster.js').Person} person */
function personChanged(person) {
  lobby.renderPeople(roster.people);
  missed.render();
  calls.personChanged(person);
  dataLinks.personChanged(person);
  files.personChanged(person);
  conversation.paintPeople();
  addPeople.render();
}
roster.on('added', (person) => {
  personChanged(person);
  calls.rejoinAfterReload(person.id); // our reload cut a call with them: pick it up again
  if (roster.size === 1) performance.mark('lan-call:first-person');
});
roster.on('changed', personChanged);
roster.on('removed', (person) => {
  unlisted(person.id); // back under the same id (a reload) is a device to check again
  personChanged(person);
});

// Every frame the server sends goes to one role (public/protocol.js decides which).
/** @type {Record<RelayRole, (type: string, data: any) => void>} */
const relayHandlers = {
  call: (type, data) => calls.handle(type, data),
  data: (type, data) => dataLinks.handle(type, data),
  space: (_type, data) => spaces.followMove(data),
};
signalling.on('signal', ({ type, data }) => relayHandlers[relayRole(type, data)](type, data));

/** @type {Record<Role, (error: {code: string, message?: string, ref?: string, target?: string}) => boolean>} */
const errorHandlers = {
  data: (error) => dataLinks.serverError(error),
  call: (error) => calls.serverError(error),
  space: (error) => spaces.refused(error),
  name: (error) => nameField.refused(error),
};
signalling.on('error', (error) => {
  let handled = false;
  for (const role of errorRoles(error)) {
    if (!errorHandlers[role](error)) continue;
    handled = true;
    if (role !== 'data') break; // see errorRoles: calls hear a refused relay too
  }
  if (handled) return;
  if (error.code !== ERROR.RATE_LIMITED) lobby.notice(`The server refused a message (${error.code}).`);
  console.warn('server error', error);
});

calls.on('call', (call) => {
  if (!call.is('ringing')) {
    if (!callView.call) notifier.askOnce(); // they just placed a call: a sensible moment to offer notifications
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

/** Reload for a new version, resuming under the same id and keeping the last notice. @param {string} notice */
function reloadNow(notice) {
  signalling.reloadSoon();
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  location.reload();
}

$('accept').onclick = () => {
  notifier.askOnce();
  calls.accept();
};
$('decline').onclick = () => calls.decline();
// A page going away ends its call at once rather than leaving the peer to time out.
addEventListener('pagehide', (event) => {
  calls.leave();
  if (!event.persisted) dataLinks.closeAll();
  signalling.pageHidden(event.persisted); // `leave` unless the page is coming straight back
});

// Your name: sent on Enter or when the box loses focus; a refused one is put back.
const nameField = new NameField(signalling, lobby, maxName);

media.on('change', () => lobby.renderMedia(media));
$('lobby').addEventListener('click', (event) => {
  const action = /** @type {HTMLElement} */ (event.target).closest('[data-action]')?.getAttribute('data-action');
  if (action === 'mic') media.setMic(!media.micOn);
  if (action === 'camera') media.setCamera(!media.cameraOn);
  if (action === 'retry-media') media.retry();
  if (action === 'copy-invite') copyInvite();
});

/** "Copy the address" of "Invite a phone": the address shown, with its space. */
async function copyInvite() {
  const address = document.querySelector('[data-testid="invite-url"] a')?.textContent || location.origin;
  const said = $('invite-copied');
  try {
    await navigator.clipboard.writeText(address);
    said.textContent = `Copied: ${address}`;
  } catch {
    said.textContent = `This browser did not allow copying; select the address above instead.`;
  }
}
for (const select of /** @type {NodeListOf<HTMLSelectElement>} */ (document.querySelectorAll('select[data-kind]'))) {
  select.onchange = () => select.value && media.use(select.dataset.kind === 'camera' ? 'camera' : 'mic', select.value);
}

new CallGuard(calls, signalling); // after the `ended` handler above: it must see a pending reload
watchLink(signalling);
// On the call screen, which covers the header and the banner: the call goes on without the server.
new ServerChip(signalling, () => calls.inCall.some((link) => link.is('connected', 'reconnecting')));
const carried = sessionStorage.getItem(NOTICE_KEY);
if (carried) lobby.notice(carried);
sessionStorage.removeItem(NOTICE_KEY);

// Verified contacts (docs/verification.md): the code, the badge, the warning, the contacts card.
new Verification(calls, () => {
  lobby.renderPeople(roster.people);
  lobby.repaintIncoming();
  callView.paint();
}, dataLinks);
// Every connection uses this device's lasting certificate: be online only once it is loaded.
identityReady.finally(() => signalling.open());
media.start();
// Installable (public/sw.js); files shared in from the system share sheet ask whom to send to.
registerServiceWorker(pageVersion || 'dev');
sharedIntoApp().then(({ files: shared, notice }) => {
  if (notice) lobby.notice(notice);
  if (shared.length) transfersView.askWhom(shared);
});

// Read-only hook for tests and the benchmark (tests/browser/, bench/callsetup.py):
//   id         this tab's peer id (null until `ready`)
//   link       signalling: connecting | online | reconnecting | offline
//   media      camera/mic: pending | ready | partial | blocked | missing | busy | insecure
//   callState  the state of the link in a call (the first one), or null;  pc  its RTCPeerConnection, or null
//   localStream  the MediaStream that calls send
//   call       the group call we are a member of: {id, members} (peer ids), or null
//   links      per person in the call: {peerId, name, state, framesDecoded, bytesReceived}
//              (received-media figures from getStats, refreshed about once a second)
Object.defineProperty(window, '__lanCall', {
  value: Object.freeze({
    get id() { return signalling.id; },
    get link() { return signalling.state; },
    get media() { return media.status; },
    get callState() { return calls.current?.state ?? null; },
    get pc() { return calls.current?.pc ?? null; },
    get localStream() { return media.stream; },
    get call() {
      const group = calls.group;
      return group ? Object.freeze({ id: group.id, members: Object.freeze([...group.members]) }) : null;
    },
    /** the peer data API (public/datalinks.js): peer(id).send/request/subscribe/channel */
    get data() { return dataLinks; },
    /** conversations kept on this device (public/conversations.js) */
    get messages() { return messenger; },
    /** file transfers (public/files.js): entries by id, send(peerId, files) */
    get files() { return files; },
    get links() {
      return Object.freeze(calls.inCall.map((link) => Object.freeze({
        peerId: link.peerId,
        name: link.peerName,
        state: link.state,
        framesDecoded: link.meter.framesDecoded,
        bytesReceived: link.meter.bytesReceived,
      })));
    },
  }),
});
