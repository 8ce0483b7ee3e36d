// The lobby: connection status, people list, your camera card, device pickers, notices
// and the incoming-call panel. Names are always text, never markup.

import { isVerified, verifiedBadge } from '../verify/contacts.js';
import { cleanName, defaultName, hue, initials, nameKey, peerTag, saveName } from '../core/names.js';
import { ERROR } from '../core/protocol.js';
import { $, clearNotices, setIcon, showNotice } from '../core/dom.js';

/**
 * @typedef {import('../calls/media.js').Media} Media
 * @typedef {import('../calls/calls.js').Person} Person
 */

const STATUS = {
  connecting: 'Connecting…',
  online: 'Online',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

/**
 * The names shown on this screen by more than one person (you included), as name keys:
 * `paintName` adds an id tag to those. The lobby updates it on every render of the list.
 */
export const sharedNames = {
  /** @type {Set<string>} */ keys: new Set(),
  /** @param {string[]} names everyone listed, and you */
  update(names) {
    const seen = new Set();
    this.keys = new Set();
    for (const name of names) {
      const key = nameKey(name);
      if (seen.has(key)) this.keys.add(key);
      seen.add(key);
    }
  },
};

/**
 * A person's name as one line that ends in "…" when it does not fit (the full name is the
 * tooltip), plus a short code from their id when someone else has the same name.
 * @param {HTMLElement} el @param {string} name @param {string} id
 */
export function paintName(el, name, id) {
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = name;
  el.replaceChildren(text);
  el.classList.add('label');
  if (sharedNames.keys.has(nameKey(name))) {
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = `#${peerTag(id)}`;
    el.append(' ', tag);
  }
  el.title = el.textContent || '';
  if (isVerified(id)) el.append(' ', verifiedBadge()); // a verified contact (public/verify/contacts.js)
}

/**
 * Initials on a colour that stays the same for a person.
 * @param {HTMLElement} el @param {string} name @param {string} key
 */
export function paintAvatar(el, name, key) {
  el.textContent = initials(name);
  el.style.setProperty('--hue', String(hue(key)));
}

/**
 * Mic and camera buttons (in `root`) show the real track state.
 * @param {Element} root @param {Media} media
 */
export function paintToggles(root, media) {
  for (const [action, on, track, label, icon] of /** @type {const} */ ([
    ['mic', media.micOn, media.audioTrack, 'Microphone', 'mic'],
    ['camera', media.cameraOn, media.camera, 'Camera', 'cam'],
  ])) {
    const button = /** @type {HTMLButtonElement} */ (root.querySelector(`[data-action="${action}"]`));
    const live = track?.readyState === 'live';
    button.disabled = !live;
    button.setAttribute('aria-pressed', String(on && live));
    button.setAttribute('aria-label', live ? `${label} ${on ? 'on' : 'off'}` : `No ${label.toLowerCase()}`);
    button.title = live ? `Turn ${label.toLowerCase()} ${on ? 'off' : 'on'}` : `No ${label.toLowerCase()}`;
    setIcon(button, on && live ? icon : `${icon}-off`);
  }
}

/** What stands in for your picture when there is none. @param {Media} media */
export function cameraWords(media) {
  if (media.status === 'pending') return 'Starting camera…';
  if (media.camera?.readyState === 'live') return 'Your camera is off';
  return media.cameraBlocked ? 'Camera blocked' : 'No camera';
}

/** Fill every camera/microphone picker (labels exist only after permission). @param {Media} media */
export function paintDevicePickers(media) {
  for (const select of document.querySelectorAll('select[data-kind]')) {
    const camera = /** @type {HTMLSelectElement} */ (select).dataset.kind === 'camera';
    const track = camera ? media.camera : media.audioTrack;
    const current = track?.getSettings().deviceId;
    const options = (camera ? media.cameras : media.mics).map(
      (d) => new Option(d.label, d.deviceId, false, d.deviceId === current),
    );
    select.replaceChildren(
      ...(options.length
        ? options
        : [new Option(camera ? 'No camera available' : 'No microphone available', '')]),
    );
    /** @type {HTMLSelectElement} */ (select).disabled = options.length < 2;
  }
}

export class Lobby {
  /** @param {(id: string) => void} onCall */
  constructor(onCall) {
    this.list = $('people');
    /** @type {Map<string, HTMLElement>} */ this.items = new Map();
    this.list.onclick = (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest('[data-peer-id]');
      if (button) onCall(/** @type {HTMLElement} */ (button).dataset.peerId || '');
    };
    /** @type {HTMLElement | null} */ this.focusBeforeIncoming = null;
    /** @type {(() => void) | null} stops the one-Tab path to a ringing call */
    this.stopTabToCall = null;
    /** @type {{peerName: string, peerId: string} | null} who is ringing here */
    this.incomingFrom = null;
    /** @type {Map<string, Person>} */ this.people = new Map();
    this.selfName = '';
    this.selfId = '';
    /**
     * What the empty list says once listed (a space's own words, public/lobby/spaces.js);
     * '' for the default.
     */
    this.emptyText = '';
  }

  /** Who you are, shown above the list so two "Chrome on Android" can tell which is theirs. */
  setSelf(name = this.selfName, id = this.selfId) {
    this.selfName = name;
    this.selfId = id;
    this.renderPeople(this.people);
  }

  /** @param {import('../core/signalling.js').SocketState} state */
  setStatus(state) {
    const status = $('link-status');
    status.dataset.state = state;
    status.textContent = STATUS[state];
    if (state === 'online') this.list.dataset.state = 'listed';
    this.paintEmpty();
  }

  /** Bots first ("check your camera and mic"), then by name. @param {Map<string, Person>} people */
  renderPeople(people) {
    this.people = people;
    sharedNames.update([this.selfName, ...[...people.values()].map((p) => p.name)]);
    const you = $('self-name');
    if (this.selfName) paintName(you, this.selfName, this.selfId);
    /** @type {HTMLElement} */ (you.parentElement).hidden = !this.selfName;
    for (const [id, item] of this.items) {
      if (!people.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    const sorted = [...people.values()].sort(
      (a, b) =>
        Number(b.kind === 'bot') - Number(a.kind === 'bot') ||
        a.name.localeCompare(b.name) ||
        a.id.localeCompare(b.id),
    );
    sorted.forEach((person, index) => {
      let item = this.items.get(person.id);
      if (!item) {
        item = /** @type {HTMLElement} */ (
          /** @type {HTMLTemplateElement} */ ($('person-template')).content.firstElementChild?.cloneNode(true)
        );
        const button = /** @type {HTMLElement} */ (item.firstElementChild);
        button.dataset.peerId = person.id;
        button.dataset.kind = person.kind;
        this.items.set(person.id, item);
      }
      paintName(/** @type {HTMLElement} */ (item.querySelector('.name')), person.name, person.id);
      paintAvatar(/** @type {HTMLElement} */ (item.querySelector('.avatar')), person.name, person.id);
      /** @type {HTMLElement} */ (item.firstElementChild).dataset.inCall = String(Boolean(person.inCall));
      // Move only what is out of place, so a focused button keeps its focus.
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] || null);
    });
    this.paintEmpty();
  }

  paintEmpty() {
    const empty = $('people-empty');
    empty.hidden = this.items.size > 0;
    empty.textContent =
      this.list.dataset.state !== 'listed'
        ? 'Looking for people…'
        : this.emptyText ||
          'Nobody else is here yet. Open this page on another device on the same network: ' +
            '“Invite a phone” shows how.';
  }

  /** @param {Media} media */
  renderMedia(media) {
    const preview = /** @type {HTMLVideoElement} */ ($('preview'));
    const camera = media.camera;
    if (camera && preview.srcObject !== media.stream) preview.srcObject = media.stream;
    const off = $('preview-off');
    off.hidden = Boolean(camera?.readyState === 'live' && media.cameraOn);
    off.textContent = cameraWords(media);
    $('media-text').textContent = media.message;
    $('media-message').hidden = !media.message;
    $('retry-media').hidden = !media.canRetry;
    paintToggles($('lobby'), media);
    paintDevicePickers(media);
  }

  /** @param {string} text */
  notice(text) {
    showNotice(text);
  }

  /**
   * Announced without taking the keyboard from anything: a Space or Enter meant for the
   * name box (or any other control) must not answer. Only when nothing has focus does
   * Accept take it, so a keyboard user can answer at once.
   * @param {{peerName: string, peerId: string}} call
   * @param {{text: string, others: string} | null} [invitation] an invitation to a group call
   * (text: "Ann invites you to a call with Bob and Cat"; others: "Bob and Cat", or '' when Ann
   * is alone there)
   */
  showIncoming(call, invitation = null) {
    const panel = $('incoming');
    const name = $('incoming-name');
    this.incomingFrom = call;
    paintName(name, call.peerName, call.peerId);
    paintAvatar($('incoming-avatar'), call.peerName, call.peerId);
    clearNotices(); // a new call: the last one's ending is old news
    panel.hidden = false;
    $('incoming-what').textContent = !invitation
      ? 'is calling you'
      : invitation.others
        ? `invites you to a call with ${invitation.others}`
        : 'invites you to a call';
    $('incoming-announce').textContent = invitation
      ? `${invitation.text}.`
      : `${name.textContent} is calling you.`;
    const active = document.activeElement;
    this.focusBeforeIncoming = /** @type {HTMLElement | null} */ (active);
    if (!active || active === document.body) $('accept').focus({ preventScroll: true });
    else if (!panel.contains(active)) this.offerTabToCall(panel);
    document.title = `${call.peerName} is calling — LAN Call`;
  }

  /**
   * One key to the ringing call (issue 19, 9: it took 10 Tabs): the next Tab, from
   * wherever the focus is, goes to Decline, and the announcement says so. Nothing else
   * changes for other keys, so a Space or Enter meant for another control never answers.
   * @param {HTMLElement} panel
   */
  offerTabToCall(panel) {
    this.stopTabToCall?.();
    const onKey = (/** @type {KeyboardEvent} */ event) => {
      if (event.key !== 'Tab' || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
      if (panel.hidden || panel.contains(document.activeElement)) return stop();
      event.preventDefault();
      $('decline').focus();
      stop();
    };
    const stop = () => {
      removeEventListener('keydown', onKey, true);
      this.stopTabToCall = null;
    };
    addEventListener('keydown', onKey, true);
    this.stopTabToCall = stop;
    $('incoming-announce').textContent += ' Press Tab to answer or decline.';
  }

  /** The caller's name again, with or without a tick, once their device has been checked. */
  repaintIncoming() {
    const call = this.incomingFrom;
    if (call && !$('incoming').hidden) paintName($('incoming-name'), call.peerName, call.peerId);
  }

  hideIncoming() {
    const panel = $('incoming');
    this.incomingFrom = null;
    if (panel.hidden) return;
    const hadFocus = panel.contains(document.activeElement);
    panel.hidden = true;
    this.stopTabToCall?.();
    $('incoming-announce').textContent = '';
    document.title = 'LAN Call';
    if (hadFocus && this.focusBeforeIncoming?.isConnected) this.focusBeforeIncoming.focus();
  }
}

/**
 * Your name box. A name goes out on Enter or when the box loses focus, never half-typed;
 * an empty or refused name puts back the one everyone still sees, with one hint saying so.
 */
export class NameField {
  /**
   * @param {import('../core/signalling.js').Signalling} signalling @param {Lobby} lobby
   * @param {() => number} maxLength
   */
  constructor(signalling, lobby, maxLength) {
    this.signalling = signalling;
    this.lobby = lobby;
    this.maxLength = maxLength;
    this.input = /** @type {HTMLInputElement} */ ($('name-input'));
    this.hint = $('name-hint');
    /** the name before the last rename: what people still see if the server refuses it */
    this.previous = signalling.name;
    this.renaming = false; // a rename is out and not yet refused
    this.input.value = signalling.name;
    // Longer than allowed can be typed or pasted, and is then said, not cut silently.
    this.input.maxLength = 4 * maxLength();
    this.input.onchange = () => this.commit();
    this.input.oninput = () => {
      this.hint.textContent = this.tooLong(this.input.value);
    };
    /** @type {HTMLFormElement} */ ($('name-form')).onsubmit = (event) => {
      event.preventDefault();
      this.commit();
    };
    this.fellBack = false;
    signalling.on('ready', () => {
      this.renaming = false; // a fresh identify went out with the current name
      lobby.setSelf(signalling.name, signalling.id || '');
    });
  }

  /** What to say about a name past the limit, or ''. @param {string} raw */
  tooLong(raw) {
    const max = this.maxLength();
    const length = Array.from(cleanName(raw, Infinity)).length;
    return length > max
      ? `Names can be up to ${max} characters; this one has ${length}, so its end will be cut.`
      : '';
  }

  commit() {
    const { signalling, input } = this;
    const cut = this.tooLong(input.value) !== '';
    const name = cleanName(input.value, this.maxLength());
    if (!name) {
      input.value = signalling.name;
      this.hint.textContent =
        'A name is needed so people know who is calling. ' + `You are still “${signalling.name}”.`;
      return;
    }
    input.value = name;
    // `change` and the form's submit can both come for one Enter: the second sees the cut
    // name and must not take back what the first said.
    if (cut)
      this.hint.textContent =
        `Names can be up to ${this.maxLength()} characters, ` + `so yours was cut to “${name}”.`;
    else if (name !== signalling.name) this.hint.textContent = '';
    if (name === signalling.name) return;
    this.previous = signalling.name;
    this.renaming = true;
    saveName(name);
    signalling.rename(name);
    this.lobby.setSelf(name);
  }

  /**
   * A server error about our name: refused (`bad-name`) or a rename dropped for coming too
   * often. Puts back the name people see. @returns {boolean} whether it was about the name
   * @param {{code: string, message?: string, ref?: string}} error
   */
  refused({ code, message, ref }) {
    if (code !== ERROR.BAD_NAME && !(code === ERROR.RATE_LIMITED && ref === 'identify')) return false;
    const { signalling } = this;
    const rejected = signalling.name;
    let back = this.previous;
    if (this.renaming) {
      signalling.name = back; // the server kept it: nothing to send
    } else {
      // The name we joined with was refused, so nobody lists us: join as this device instead.
      back = cleanName(defaultName(), this.maxLength());
      if (back === rejected || this.fellBack) back = 'Guest';
      if (back !== rejected) signalling.rename(back);
      this.fellBack = true;
    }
    this.renaming = false;
    this.previous = back;
    saveName(back);
    this.lobby.setSelf(back);
    if (this.input.value === rejected || !this.input.value) this.input.value = back;
    const why =
      code === ERROR.BAD_NAME
        ? `“${rejected}” can’t be used: ${String(message || 'the server refused it').replace(/\.$/, '')}.`
        : 'Too many renames in a row: wait a moment, then try again.';
    this.hint.textContent = `${why} You are still “${back}”.`;
    return true;
  }
}
