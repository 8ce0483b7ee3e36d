// LAN Call: wires the signalling socket, local media, call control and the screens together.

import { CallController } from './calls.js';
import { CallGuard } from './callguard.js';
import { watchLink } from './linkbanner.js';
import { MissedCalls } from './missed.js';
import { Roster } from './roster.js';
import { CallNotifier } from './notify.js';
import { CallView } from './callview.js';
import { ChatPanel } from './chat.js';
import { Media } from './media.js';
import { loadName } from './names.js';
import { startRinging, stopRinging } from './ring.js';
import { Signalling } from './signalling.js';
import { StatsOverlay } from './stats.js';
import { $, Lobby, NameField } from './ui.js';

const pageVersion = document.body.dataset.version;
/** @type {import('./signalling.js').ServerConfig} */
const pageConfig = JSON.parse(document.body.dataset.config || '{}');
const maxName = () => signalling.config.maxNameLength || 64;

const roster = new Roster();
const signalling = new Signalling(loadName(pageConfig.maxNameLength || 64), pageConfig);
const media = new Media();
const calls = new CallController(signalling, media, roster);
const lobby = new Lobby((id) => calls.call(id));
const chat = new ChatPanel();
const stats = new StatsOverlay($('stats'));
const callView = new CallView(media, chat, stats, () => calls.hangup());
const missed = new MissedCalls(roster.people, (id) => calls.call(id));
const notifier = new CallNotifier();
const NOTICE_KEY = 'lanCall.notice'; // the end-of-call message, carried over an update reload
let reloadPending = false;

signalling.on('state', (state) => lobby.setStatus(state));

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
}
roster.on('added', (person) => {
  personChanged(person);
  if (roster.size === 1) performance.mark('lan-call:first-person');
});
roster.on('changed', personChanged);
roster.on('removed', personChanged);

signalling.on('signal', ({ type, data }) => calls.handle(type, data));

signalling.on('error', (error) => {
  if (calls.serverError(error)) return;
  if (nameField.refused(error)) return;
  if (error.code !== 'rate-limited') lobby.notice(`The server refused a message (${error.code}).`);
  console.warn('server error', error);
});

calls.on('call', (call) => {
  if (!call.is('ringing')) {
    notifier.askOnce(); // they just placed a call: a sensible moment to offer notifications
    return callView.open(call);
  }
  lobby.showIncoming(call);
  startRinging();
  notifier.incoming(call);
  call.during('state', () => {
    if (call.is('ringing')) return;
    stopRinging();
    lobby.hideIncoming();
    if (call.active && callView.call !== call) callView.open(call);
  });
});

calls.on('ended', ({ call, reason, notice }) => {
  stopRinging();
  lobby.hideIncoming();
  if (callView.call === call) callView.close();
  lobby.notice(notice);
  if (reason === 'unavailable') roster.remove(call.peerId); // the server no longer knows them
  if (reloadPending) reloadNow(notice);
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
});
for (const select of /** @type {NodeListOf<HTMLSelectElement>} */ (document.querySelectorAll('select[data-kind]'))) {
  select.onchange = () => select.value && media.use(select.dataset.kind === 'camera' ? 'camera' : 'mic', select.value);
}

new CallGuard(calls, signalling); // after the `ended` handler above: it must see a pending reload
watchLink(signalling);
const carried = sessionStorage.getItem(NOTICE_KEY);
if (carried) lobby.notice(carried);
sessionStorage.removeItem(NOTICE_KEY);

signalling.open();
media.start();

// Read-only hook for tests and the benchmark (tests/browser/, bench/callsetup.py):
//   id         this tab's peer id (null until `ready`)
//   link       signalling: connecting | online | reconnecting | offline
//   media      camera/mic: pending | ready | partial | blocked | missing | busy | insecure
//   callState  the state of the link in a call, or null;  pc  its RTCPeerConnection, or null
//   localStream  the MediaStream that calls send
Object.defineProperty(window, '__lanCall', {
  value: Object.freeze({
    get id() { return signalling.id; },
    get link() { return signalling.state; },
    get media() { return media.status; },
    get callState() { return calls.current?.state ?? null; },
    get pc() { return calls.current?.pc ?? null; },
    get localStream() { return media.stream; },
  }),
});
