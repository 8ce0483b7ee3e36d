// The lobby: connection status, people list, your camera card, device pickers, notices
// and the incoming-call panel. Names are always text, never markup.

import { hue, initials } from './names.js';

/**
 * @typedef {import('./media.js').Media} Media
 * @typedef {import('./calls.js').Person} Person
 */

const NOTICE_MS = 6000;
const STATUS = { connecting: 'Connecting…', online: 'Online', reconnecting: 'Reconnecting…', offline: 'Offline' };

/** @param {string} id @returns {HTMLElement} */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Point a button's icon at another symbol of the sprite. @param {Element} button @param {string} icon */
export function setIcon(button, icon) {
  const use = button.querySelector('use');
  use?.setAttribute('href', use.getAttribute('href')?.replace(/#.*/, `#${icon}`) || '');
}

/** Initials on a colour that stays the same for a person. @param {HTMLElement} el */
export function paintAvatar(el, name, key) {
  el.textContent = initials(name);
  el.style.setProperty('--hue', String(hue(key)));
}

/** Mic and camera buttons (in `root`) show the real track state. @param {Element} root @param {Media} media */
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

/** Fill every camera/microphone picker (labels exist only after permission). @param {Media} media */
export function paintDevicePickers(media) {
  for (const select of document.querySelectorAll('select[data-kind]')) {
    const camera = /** @type {HTMLSelectElement} */ (select).dataset.kind === 'camera';
    const track = camera ? media.camera : media.audioTrack;
    const current = track?.getSettings().deviceId;
    const options = (camera ? media.cameras : media.mics).map((d) => new Option(d.label, d.deviceId, false, d.deviceId === current));
    select.replaceChildren(...(options.length ? options : [new Option(camera ? 'No camera available' : 'No microphone available', '')]));
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
  }

  /** @param {import('./signalling.js').LinkState} state */
  setStatus(state) {
    const status = $('link-status');
    status.dataset.state = state;
    status.textContent = STATUS[state];
    if (state === 'online') this.list.dataset.state = 'listed';
    this.paintEmpty();
  }

  /** Bots first ("check your camera and mic"), then by name. @param {Map<string, Person>} people */
  renderPeople(people) {
    for (const [id, item] of this.items) {
      if (!people.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    const sorted = [...people.values()].sort(
      (a, b) => Number(b.kind === 'bot') - Number(a.kind === 'bot') || a.name.localeCompare(b.name) || a.id.localeCompare(b.id),
    );
    sorted.forEach((person, index) => {
      let item = this.items.get(person.id);
      if (!item) {
        item = /** @type {HTMLElement} */ (/** @type {HTMLTemplateElement} */ ($('person-template')).content.firstElementChild?.cloneNode(true));
        const button = /** @type {HTMLElement} */ (item.firstElementChild);
        button.dataset.peerId = person.id;
        button.dataset.kind = person.kind;
        this.items.set(person.id, item);
      }
      /** @type {HTMLElement} */ (item.querySelector('.name')).textContent = person.name;
      paintAvatar(/** @type {HTMLElement} */ (item.querySelector('.avatar')), person.name, person.id);
      // Move only what is out of place, so a focused button keeps its focus.
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] || null);
    });
    this.paintEmpty();
  }

  paintEmpty() {
    const empty = $('people-empty');
    empty.hidden = this.items.size > 0;
    empty.textContent = this.list.dataset.state === 'listed'
      ? 'Nobody else is here yet. Open this page on another device on the same network: “Invite a phone” shows how.'
      : 'Looking for people…';
  }

  /** @param {Media} media */
  renderMedia(media) {
    const preview = /** @type {HTMLVideoElement} */ ($('preview'));
    const camera = media.camera;
    if (camera && preview.srcObject !== media.stream) preview.srcObject = media.stream;
    const off = $('preview-off');
    off.hidden = Boolean(camera?.readyState === 'live' && media.cameraOn);
    off.textContent = media.status === 'pending' ? 'Starting camera…' : camera ? 'Camera is off' : 'No camera';
    const message = $('media-message');
    message.textContent = media.message;
    message.hidden = !media.message;
    paintToggles($('lobby'), media);
    paintDevicePickers(media);
  }

  /** @param {string} text */
  notice(text) {
    const box = $('notices');
    const item = document.createElement('p');
    item.className = 'notice';
    item.dataset.testid = 'notice';
    item.textContent = text;
    box.append(item);
    if (box.children.length > 3) box.firstElementChild?.remove();
    setTimeout(() => item.remove(), NOTICE_MS);
  }

  /** @param {{peerName: string, peerId: string}} call */
  showIncoming(call) {
    $('incoming-name').textContent = call.peerName;
    paintAvatar($('incoming-avatar'), call.peerName, call.peerId);
    $('incoming').hidden = false;
    this.focusBeforeIncoming = /** @type {HTMLElement | null} */ (document.activeElement);
    $('accept').focus();
    document.title = `${call.peerName} is calling — LAN Call`;
  }

  hideIncoming() {
    const panel = $('incoming');
    if (panel.hidden) return;
    const hadFocus = panel.contains(document.activeElement);
    panel.hidden = true;
    document.title = 'LAN Call';
    if (hadFocus) this.focusBeforeIncoming?.focus();
  }
}
