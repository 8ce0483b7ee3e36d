// LAN Call, first: the lobby. This is all a first visit loads before the people list
// shows (the signalling socket, who is here, your name, the space code, this device's
// identity); everything else (calls, messages, files, verification, spaces, the camera)
// is public/features.js, fetched with `import()` once the list is up, or at once when
// something needs it sooner (a call arriving, a tap on Call).

import { unlisted } from './verify/contacts.js';
import { identityReady } from './verify/identity.js';
import { watchLink } from './lobby/offlinebanner.js';
import { loadName } from './core/names.js';
import { Roster } from './core/roster.js';
import { ServerChip } from './lobby/serverchip.js';
import { Signalling } from './core/signalling.js';
import { startingSpace } from './lobby/spacecode.js';
import { $ } from './core/dom.js';
import { Lobby, NameField } from './lobby/lobby.js';

/** @typedef {import('./features.js').Features} Features */

const pageVersion = document.body.dataset.version;
/** @type {import('./core/signalling.js').ServerConfig} */
const pageConfig = JSON.parse(document.body.dataset.config || '{}');
const maxName = () => signalling.config.maxNameLength || 64;
const NOTICE_KEY = 'lanCall.notice'; // the end-of-call message, carried over an update reload

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
const lobby = new Lobby((id) => withFeatures((f) => f.calls.call(id)));
// Your name: sent on Enter or when the box loses focus; a refused one is put back.
const nameField = new NameField(signalling, lobby, maxName);

/** @type {Features | null} */
let features = null;
/** @type {Promise<Features> | null} */
let loading = null;
/** What the server sent before the features were here: handed over in order. @type {[string, any][]} */
const early = [];
/** Past this many, frames that arrive before the features are dropped (a flood, a load that hangs). */
const MAX_EARLY = 256;

/**
 * The features, loaded on first need. They start once this device's lasting certificate
 * is loaded (every connection uses it), so the socket and the list need not wait for it.
 */
function loadFeatures() {
  loading ??= Promise.all([import('./features.js'), identityReady]).then(([{ startFeatures }]) => {
    const started = startFeatures({
      signalling,
      roster,
      lobby,
      nameField,
      pageVersion,
      firstSpace,
      reloadNow,
    });
    features = started;
    for (const [type, detail] of early.splice(0)) started.hear(type, detail);
    return started;
  });
  // A load that failed (the network dropped mid-fetch) is tried again on the next need.
  loading.catch(() => (loading = null));
  return loading;
}

/** Run `action` with the features, loading them first if needed. @param {(f: Features) => void} action */
function withFeatures(action) {
  if (features) action(features);
  else loadFeatures().then(action, notLoaded);
}

/** @param {unknown} error */
function notLoaded(error) {
  lobby.notice(`This page could not load all of itself (${error}). Try again, or reload it.`);
}

// Frames for calls, data links, spaces and errors go to the features; before they are
// here, kept (and the features fetched at once: someone may be calling).
for (const type of ['signal', 'error']) {
  signalling.on(type, (detail) => {
    if (features) return features.hear(type, detail);
    if (early.length < MAX_EARLY) early.push([type, detail]);
    loadFeatures().catch(() => {}); // said when someone acts: see withFeatures
  });
}

signalling.on('state', (state) => lobby.setStatus(state));
signalling.on('peer', (data) => roster.listed(data));
signalling.on('ready', ({ version, reconnected }) => {
  performance.mark('lan-call:ready');
  if (version && version !== pageVersion) {
    // A new version of the app: reload now, or after the call rather than cut it off.
    if (!features?.updateReady()) reloadNow('');
  } else if (reconnected) {
    roster.reconnected(); // whoever is not listed again soon has left
  }
  // The list is up (or on its way): the rest of the app is fetched while the lobby idles.
  idle(() => loadFeatures().catch(notLoaded));
});

/** @param {() => void} action */
function idle(action) {
  if ('requestIdleCallback' in window) requestIdleCallback(action, { timeout: 500 });
  else setTimeout(action, 50);
}

/**
 * The list changed: the lobby now, the features (calls, files, conversations) once here.
 * @param {import('./core/roster.js').Person} person
 */
function personChanged(person) {
  lobby.renderPeople(roster.people);
  features?.personChanged(person);
}
roster.on('added', (person) => {
  personChanged(person);
  features?.personAdded(person);
  if (roster.size === 1) performance.mark('lan-call:first-person');
});
roster.on('changed', personChanged);
roster.on('removed', (person) => {
  unlisted(person.id); // back under the same id (a reload) is a device to check again
  personChanged(person);
});

/**
 * Reload for a new version, resuming under the same id and keeping the last notice.
 * @param {string} notice
 */
function reloadNow(notice) {
  signalling.reloadSoon();
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  location.reload();
}

$('lobby').addEventListener('click', (event) => {
  const action = /** @type {HTMLElement} */ (event.target)
    .closest('[data-action]')
    ?.getAttribute('data-action');
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

watchLink(signalling);
// On the call screen, which covers the header and the banner: the call goes on without the server.
new ServerChip(signalling, () => features?.inCall() ?? false);
const carried = sessionStorage.getItem(NOTICE_KEY);
if (carried) lobby.notice(carried);
sessionStorage.removeItem(NOTICE_KEY);
if (firstSpace.bad)
  lobby.notice(`“${firstSpace.linked}” in that link is not a space code, so you are where you were before.`);
// Online at once; the certificate (IndexedDB, or made on a first visit) loads meanwhile.
signalling.open();
// A page going away leaves at once rather than leaving the others to time out.
addEventListener('pagehide', (event) => {
  features?.pageHidden(event.persisted);
  signalling.pageHidden(event.persisted); // `leave` unless the page is coming straight back
});

// Read-only hook for tests and the benchmark (tests/browser/, bench/callsetup.py):
//   id         this tab's peer id (null until `ready`)
//   link       signalling: connecting | online | reconnecting | offline
//   loaded     the features (public/features.js) are running
//   media      camera/mic: pending | ready | partial | blocked | missing | busy | insecure
//   callState  the state of the link in a call (the first one), or null;  pc  its RTCPeerConnection, or null
//   localStream  the MediaStream that calls send
//   call       the group call we are a member of: {id, members} (peer ids), or null
//   links      per person in the call: {peerId, name, state, framesDecoded, bytesReceived}
//              (received-media figures from getStats, refreshed about once a second)
//   data, messages, files   the peer data API, conversations and file transfers (undefined until loaded)
Object.defineProperty(window, '__lanCall', {
  value: Object.freeze({
    get id() {
      return signalling.id;
    },
    get link() {
      return signalling.state;
    },
    get loaded() {
      return features !== null;
    },
    get media() {
      return features?.media.status ?? 'pending';
    },
    get callState() {
      return features?.calls.current?.state ?? null;
    },
    get pc() {
      return features?.calls.current?.pc ?? null;
    },
    get localStream() {
      return features?.media.stream ?? null;
    },
    get call() {
      const group = features?.calls.group;
      return group ? Object.freeze({ id: group.id, members: Object.freeze([...group.members]) }) : null;
    },
    /** the peer data API (public/data/datalinks.js): peer(id).send/request/subscribe/channel */
    get data() {
      return features?.dataLinks;
    },
    /** conversations kept on this device (public/data/conversations.js) */
    get messages() {
      return features?.messenger;
    },
    /** file transfers (public/data/files.js): entries by id, send(peerId, files) */
    get files() {
      return features?.files;
    },
    get links() {
      return Object.freeze(
        (features?.calls.inCall || []).map((link) =>
          Object.freeze({
            peerId: link.peerId,
            name: link.peerName,
            state: link.state,
            framesDecoded: link.meter.framesDecoded,
            bytesReceived: link.meter.bytesReceived,
          }),
        ),
      );
    },
  }),
});
