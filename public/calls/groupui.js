// The group-call panels of the call screen: "Add people" (the people not in this call;
// tap one to invite them) and call waiting (someone calls while you are in a call: add
// them to it, or decline). Names are always text, never markup.

import { $ } from '../core/dom.js';
import { paintAvatar, paintName } from '../lobby/lobby.js';

/**
 * @typedef {import('./calls.js').CallController} CallController
 * @typedef {import('./calls.js').Person} Person
 */

export class AddPeople {
  /** @param {CallController} calls @param {Map<string, Person>} people */
  constructor(calls, people) {
    this.calls = calls;
    this.people = people;
    this.sheet = $('add-people');
    this.list = $('add-list');
    this.button = /** @type {HTMLElement} */ (document.querySelector('[data-action="add-people"]'));
    /** @type {Map<string, HTMLElement>} */
    this.items = new Map();
    this.list.onclick = (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest('[data-peer-id]');
      const id = /** @type {HTMLElement | null} */ (button)?.dataset.peerId;
      if (!id) return;
      if (this.calls.invited.has(id))
        this.calls.withdrawInvite(id); // tapped again: take it back
      else if (!this.calls.isFull()) this.calls.invite(id);
    };
  }

  get isOpen() {
    return !this.sheet.hidden;
  }

  /** @param {boolean} [show] */
  toggle(show = this.sheet.hidden) {
    if (!show && this.sheet.contains(document.activeElement)) this.button.focus(); // focus stays on the way
    this.sheet.hidden = !show;
    this.button.setAttribute('aria-expanded', String(show));
    if (show) {
      this.render();
      /** @type {HTMLElement | null} */ (
        this.list.querySelector('button:not([aria-pressed="true"])')
      )?.focus();
    }
  }

  /** Who can be added: everyone listed who is not in this call. */
  render() {
    const group = this.calls.group;
    // "Add people" needs a call the server tracks (it has an id) that we are in.
    this.button.hidden = !group;
    if (!group) {
      if (this.isOpen) this.toggle(false);
      return;
    }
    const members = new Set(group.members);
    const full = this.calls.isFull();
    const note = $('add-full');
    note.hidden = !full;
    note.textContent = full
      ? `This call is full: ${this.calls.maxCallSize} people, invitations included. ` +
        'Cancel an invitation to add someone else.'
      : '';
    const people = [...this.people.values()]
      .filter((person) => !members.has(person.id))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    for (const [id, item] of this.items) {
      if (!people.some((person) => person.id === id)) {
        // The person just joined (or left): focus stays in the sheet, not lost on the page.
        if (item.contains(document.activeElement))
          /** @type {HTMLElement} */ (this.sheet.querySelector('[data-action="close-add-people"]')).focus();
        item.remove();
        this.items.delete(id);
      }
    }
    people.forEach((person, index) => {
      let item = this.items.get(person.id);
      if (!item) {
        item = document.createElement('li');
        item.innerHTML =
          '<button type="button" class="person" data-testid="add-person">' +
          '<span class="avatar" aria-hidden="true"></span>' +
          '<span class="who"><span class="visually-hidden action"></span><span class="name"></span>' +
          '<span class="status small"></span></span></button>';
        this.items.set(person.id, item);
      }
      const button = /** @type {HTMLElement} */ (item.firstElementChild);
      button.dataset.peerId = person.id;
      paintName(/** @type {HTMLElement} */ (item.querySelector('.name')), person.name, person.id);
      paintAvatar(/** @type {HTMLElement} */ (item.querySelector('.avatar')), person.name, person.id);
      const invited = this.calls.invited.has(person.id);
      button.setAttribute('aria-pressed', String(invited)); // tap again to cancel the invitation
      button.setAttribute('aria-disabled', String(full && !invited)); // not `disabled`: the focus stays on it
      /** @type {HTMLElement} */ (item.querySelector('.action')).textContent = invited
        ? 'Cancel the invitation of '
        : 'Add ';
      /** @type {HTMLElement} */ (item.querySelector('.status')).textContent = invited
        ? 'Ringing… · tap to cancel'
        : person.inCall
          ? 'In another call'
          : '';
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] || null);
    });
    $('add-empty').hidden = people.length > 0;
  }
}

export class CallWaiting {
  constructor() {
    this.panel = $('waiting');
    /** @type {import('./peerlink.js').PeerLink | null} */
    this.link = null;
  }

  /**
   * Announced without taking the keyboard (like a ringing call in the lobby): the
   * person chooses Add or Decline when they are ready.
   * @param {import('./peerlink.js').PeerLink} link
   */
  show(link) {
    this.link = link;
    const text = $('waiting-text');
    paintAvatar($('waiting-avatar'), link.peerName, link.peerId);
    const name = document.createElement('strong');
    paintName(name, link.peerName, link.peerId);
    text.replaceChildren(name, ' is calling you');
    this.panel.hidden = false;
    $('waiting-announce').textContent = `${link.peerName} is calling you. Add them to this call, or decline.`;
  }

  /** @param {import('./peerlink.js').PeerLink} [link] the one that stopped ringing; any if absent */
  hide(link) {
    if (link && link !== this.link) return;
    const hadFocus = this.panel.contains(document.activeElement);
    this.link = null;
    this.panel.hidden = true;
    $('waiting-announce').textContent = '';
    if (hadFocus) $('call').focus({ preventScroll: true });
  }
}
