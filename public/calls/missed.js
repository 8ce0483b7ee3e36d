// Missed calls, kept on this device (localStorage): who called and when, a badge until
// you look, "Call back" and "Clear". Calls rejected as busy count, and so do calls that
// rang out or that the caller gave up on before you answered. Names are text, never markup.

import { nameKey, peerTag } from '../core/names.js';
import { $ } from '../core/dom.js';
import { paintName } from '../lobby/lobby.js';

/**
 * @typedef {import('./calls.js').Person} Person
 * @typedef {{peerId: string, name: string, at: number, reason: string, seen: boolean}} MissedCall
 */

const STORE_KEY = 'lanCall.missed';
const MAX_KEPT = 30;
const REASONS = /** @type {Record<string, string>} */ ({ busy: 'while you were in a call' });

export class MissedCalls {
  /**
   * @param {Map<string, Person>} people who is here now (a caller may be back under a new id)
   * @param {(peerId: string) => void} callBack
   */
  constructor(people, callBack) {
    this.people = people;
    this.section = $('missed');
    this.list = $('missed-list');
    this.badge = /** @type {HTMLButtonElement} */ ($('missed-badge'));
    /** @type {MissedCall[]} newest first */
    this.entries = load();
    this.list.onclick = (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest('[data-call-back]');
      const person = button && this.findPerson(this.entries[Number(button.getAttribute('data-call-back'))]);
      if (!person) return;
      this.markSeen();
      callBack(person.id);
    };
    $('missed-clear').onclick = () => {
      this.entries = [];
      this.save();
      $('people-title').focus(); // the list is gone; don't leave focus on nothing
    };
    this.badge.onclick = () => {
      this.section.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      $('missed-title').focus({ preventScroll: true });
      this.markSeen();
    };
    // Another tab of this app on this device changed the list.
    addEventListener('storage', (event) => {
      if (event.key !== STORE_KEY) return;
      this.entries = load();
      this.render();
    });
    this.render();
  }

  /** @param {{peerId: string, name: string, reason: string}} call */
  add({ peerId, name, reason }) {
    this.entries.unshift({ peerId, name, reason, at: Date.now(), seen: false });
    this.entries.length = Math.min(this.entries.length, MAX_KEPT);
    this.save();
  }

  markSeen() {
    if (!this.entries.some((entry) => !entry.seen)) return;
    for (const entry of this.entries) entry.seen = true;
    this.save();
  }

  save() {
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(this.entries));
    } catch {
      // Storage full or blocked: the list still works until the page closes.
    }
    this.render();
  }

  /**
   * The caller as they are listed now: the same tab, or, after they reopened it, the one
   * person with the same name. @param {MissedCall | undefined} entry
   */
  findPerson(entry) {
    if (!entry) return null;
    const same = this.people.get(entry.peerId);
    if (same) return same;
    const named = [...this.people.values()].filter((p) => p.kind !== 'bot' && p.name === entry.name);
    return named.length === 1 ? named[0] : null;
  }

  /** Called whenever the people list changes, so "Call back" is offered only when it can work. */
  render() {
    const unseen = this.entries.filter((entry) => !entry.seen).length;
    this.badge.hidden = unseen === 0;
    const word = document.createElement('span');
    word.className = 'missed-word'; // dropped on narrow phones, where the topbar is full
    word.textContent = ' missed';
    this.badge.replaceChildren(String(unseen), word);
    this.badge.setAttribute('aria-label', `${unseen} missed ${unseen === 1 ? 'call' : 'calls'}: show`);
    this.section.hidden = this.entries.length === 0;
    document.body.dataset.missed = String(this.entries.length > 0);
    // The same name from different devices (two "Ann"s): each with its tag, as in the list.
    /** @type {Map<string, Set<string>>} */
    const idsByName = new Map();
    for (const entry of this.entries)
      idsByName.set(nameKey(entry.name), (idsByName.get(nameKey(entry.name)) || new Set()).add(entry.peerId));
    const items = this.entries.map((entry, index) => {
      const item = document.createElement('li');
      item.className = entry.seen ? 'missed-call' : 'missed-call new';
      item.dataset.testid = 'missed-call';
      const who = document.createElement('span');
      who.className = 'who';
      const name = document.createElement('span');
      name.className = 'name';
      paintName(name, entry.name, entry.peerId);
      if ((idsByName.get(nameKey(entry.name))?.size || 0) > 1 && !name.querySelector('.tag')) {
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.textContent = `#${peerTag(entry.peerId)}`;
        name.querySelector('.text')?.after(' ', tag);
        name.title = name.textContent || '';
      }
      const when = document.createElement('span');
      when.className = 'when';
      when.textContent = [formatWhen(entry.at), REASONS[entry.reason]].filter(Boolean).join(' · ');
      who.append(name, when);
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'button call-back';
      button.dataset.callBack = String(index);
      const here = this.findPerson(entry);
      button.disabled = !here;
      button.textContent = here ? 'Call back' : 'Not here';
      button.title = here ? `Call ${entry.name}` : `${entry.name} is not on this network right now`;
      button.setAttribute('aria-label', here ? `Call ${entry.name} back` : `${entry.name} is not here now`);
      item.append(who, button);
      return item;
    });
    this.list.replaceChildren(...items);
  }
}

/** @returns {MissedCall[]} */
function load() {
  try {
    const stored = JSON.parse(localStorage.getItem(STORE_KEY) || '[]');
    if (!Array.isArray(stored)) return [];
    return stored
      .filter((e) => e && typeof e.peerId === 'string' && typeof e.name === 'string' && Number.isFinite(e.at))
      .map((e) => ({
        peerId: e.peerId,
        name: e.name,
        at: e.at,
        reason: String(e.reason || ''),
        seen: Boolean(e.seen),
      }))
      .slice(0, MAX_KEPT);
  } catch {
    return [];
  }
}

/** "14:05" today, "Mon 14:05" this week, else the date. @param {number} at */
export function formatWhen(at, now = Date.now()) {
  const date = new Date(at);
  const time = date.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
  if (date.toDateString() === new Date(now).toDateString()) return time;
  if (now - at < 6 * 24 * 3600 * 1000) return `${date.toLocaleDateString([], { weekday: 'short' })} ${time}`;
  return `${date.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${time}`;
}
