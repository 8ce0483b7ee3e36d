// Spaces (docs/protocol.md §11): the lobby's panel to create, join, share and leave a
// space, and to see and remove who joined it. The codes themselves are public/lobby/spacecode.js.

import { shownText } from '../core/plaintext.js';
import { ERROR } from '../core/protocol.js';
import { cleanSpaceCode, MAX_LENGTH, MIN_LENGTH, newSpaceCode, SPACE_KEY, spaceLink } from './spacecode.js';

export {
  cleanSpaceCode,
  newSpaceCode,
  SPACE_ALPHABET,
  SPACE_CODE_LENGTH,
  SPACE_KEY,
  spaceLink,
  startingSpace,
} from './spacecode.js';

const REFUSAL_WINDOW_MS = 5000; // an error about `identify` this soon after a move is about the move

/**
 * The lobby's Spaces control: the current space (code, link, QR code), create, join by
 * code, leave to the open network (when the server has one).
 */
export class SpacesPanel {
  /**
   * @param {import('../core/signalling.js').Signalling} signalling
   * @param {string} origin where links point (the LAN address others can open)
   * @param {{notice: (text: string) => void, changed: (code: string | null, required: boolean) => void,
   *   roster: import('../core/roster.js').Roster}} hooks
   * `changed` after every render: the space now, and whether one must be chosen first;
   * `roster` who is listed (in a space, everyone in it), to see and remove them
   */
  constructor(signalling, origin, { notice, changed, roster }) {
    this.signalling = signalling;
    this.notice = notice;
    this.changed = changed;
    this.origin = origin;
    /** @type {string | null} the space before the last move, while the server may still refuse it */
    this.previous = null;
    this.movedAt = 0;
    this.required = false; // the server said there is no open network
    const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
    this.root = /** @type {HTMLDetailsElement} */ ($('spaces'));
    this.summary = $('space-summary');
    this.input = /** @type {HTMLInputElement} */ ($('space-input'));
    this.hint = $('space-hint');
    this.el = {
      current: $('space-current'),
      code: $('space-code'),
      link: /** @type {HTMLAnchorElement} */ ($('space-link')),
      qr: /** @type {HTMLImageElement} */ ($('space-qr')),
      leave: $('space-leave'),
      create: $('space-create'),
      needed: $('space-needed'),
      title: $('people-title'),
    };
    this.roster = roster;
    /** @type {Map<string, number>} when this page first listed each person of this space */
    this.since = new Map();
    /** @type {string | null} who "Remove" was tapped for, waiting for the confirmation */
    this.removing = null;
    this.members = $('space-member-list');
    this.confirm = $('space-remove-confirm');
    /** @type {HTMLElement} */ (this.confirm.querySelector('[data-testid="space-remove-yes"]')).onclick =
      () => this.remove();
    /** @type {HTMLElement} */ (this.confirm.querySelector('[data-testid="space-remove-no"]')).onclick = () =>
      this.askRemove(null);
    roster.on('added', (/** @type {{id: string}} */ person) => {
      this.since.set(person.id, Date.now());
      this.renderMembers();
    });
    roster.on('changed', () => this.renderMembers());
    roster.on('removed', (/** @type {{id: string}} */ person) => {
      this.since.delete(person.id);
      if (this.removing === person.id) this.removing = null;
      this.renderMembers();
    });
    $('space-create').onclick = () => this.move(newSpaceCode());
    this.el.leave.onclick = () => this.move(null);
    /** @type {HTMLFormElement} */ ($('space-form')).onsubmit = (event) => {
      event.preventDefault();
      this.join(this.input.value);
    };
    this.input.oninput = () => {
      this.hint.textContent = '';
    };
    signalling.on('ready', () => this.render());
    this.render();
  }

  get openSpace() {
    return this.signalling.config.openSpace !== false;
  }

  /** @param {string} text what was typed */
  join(text) {
    const code = cleanSpaceCode(text);
    if (!code) {
      this.hint.textContent =
        `“${text.trim()}” is not a space code. ` +
        `Codes are ${MIN_LENGTH} to ${MAX_LENGTH} letters and digits, without 0, O, 1, I or L.`;
      this.input.focus();
      return;
    }
    this.input.value = '';
    this.move(code);
  }

  /**
   * Go to space `code` (null: the open network), remembered on this device.
   * @param {string | null} code @param {string} [told] what to say instead of the usual notice
   */
  move(code, told) {
    this.hint.textContent = '';
    if (code === this.signalling.space) return this.render();
    this.previous = this.signalling.space;
    this.movedAt = Date.now();
    this.required = false;
    remember(code);
    this.signalling.setSpace(code);
    this.render();
    this.notice(
      told ||
        (code ? `You are in space ${code}. Only people in it see you.` : 'You are on the open network.'),
    );
  }

  /**
   * A server error about spaces: no open network here (`space-required`), or the last move
   * refused (a bad code, or moving too often). @returns {boolean} whether it was about spaces
   * @param {{code: string, message?: string, ref?: string}} error
   */
  refused({ code, message, ref }) {
    if (ref !== 'identify') return false;
    if (code === ERROR.SPACE_REQUIRED) {
      this.required = true;
      this.root.open = true;
      this.render();
      return true;
    }
    const recent = Date.now() - this.movedAt < REFUSAL_WINDOW_MS;
    const aboutSpace =
      code === ERROR.BAD_MESSAGE || (code === ERROR.RATE_LIMITED && String(message).includes('space'));
    if (!recent || !aboutSpace) return false;
    const back = this.previous;
    this.signalling.space = back; // the server kept it: nothing to send
    remember(back);
    this.movedAt = 0;
    const guessing = String(message).includes('new spaces');
    this.hint.textContent =
      code !== ERROR.RATE_LIMITED
        ? `The server refused that space code: ${String(message || '').replace(/\.$/, '')}.`
        : guessing
          ? 'Too many new spaces tried from this device: check the code, and try again in a minute.'
          : 'Too many changes of space in a row: wait a moment, then try again.';
    this.root.open = true;
    this.render();
    return true;
  }

  /** The people of this space, each with "Remove" (bots are in every space: not them). */
  renderMembers() {
    const code = this.signalling.space;
    const people = code ? [...this.roster.people.values()].filter((p) => p.kind !== 'bot') : [];
    const items = people.map((person) => {
      const item = document.createElement('li');
      item.className = 'space-member';
      item.dataset.testid = 'space-member';
      const who = document.createElement('span');
      who.className = 'who';
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = shownText(person.name);
      const since = document.createElement('span');
      since.className = 'small';
      const at = this.since.get(person.id);
      since.textContent = at
        ? ` here since ${new Date(at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}`
        : '';
      who.append(name, since);
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'button secondary';
      remove.textContent = 'Remove';
      remove.dataset.testid = 'space-remove';
      remove.setAttribute('aria-label', `Remove ${shownText(person.name)} from this space`);
      remove.onclick = () => this.askRemove(person.id);
      item.append(who, remove);
      return item;
    });
    if (!items.length) {
      const empty = document.createElement('li');
      empty.className = 'small';
      empty.textContent = 'Nobody else yet.';
      items.push(empty);
    }
    this.members.replaceChildren(...items);
    const target = this.removing ? this.roster.get(this.removing) : null;
    this.confirm.hidden = !target;
    if (target) {
      /** @type {HTMLElement} */ (this.confirm.querySelector('#space-remove-text')).textContent =
        `Remove ${shownText(target.name)}? Everyone else here moves with you to a new code; ` +
        `${shownText(target.name)} keeps the old one and sees nobody.`;
    }
  }

  /** @param {string | null} peerId who to remove (null: cancel) */
  askRemove(peerId) {
    this.removing = peerId;
    this.renderMembers();
    if (peerId)
      /** @type {HTMLElement} */ (this.confirm.querySelector('[data-testid="space-remove-no"]')).focus();
  }

  /**
   * Remove the person asked about (issue 18, finding 28): a new code for everyone else,
   * told to each of them (`space-move`, relayed by the server within the space only),
   * then this device goes there too. Someone away right now is not told: they come back
   * to the old code (and the person removed), and need the new one from someone.
   */
  remove() {
    const target = this.removing ? this.roster.get(this.removing) : null;
    this.removing = null;
    if (!target || !this.signalling.space) return this.renderMembers();
    const code = newSpaceCode();
    for (const person of this.roster.people.values()) {
      if (person.id === target.id || person.kind === 'bot') continue;
      this.signalling.send('space-move', { target: person.id, code, removed: target.id });
    }
    this.move(
      code,
      `You removed ${shownText(target.name)}: you and everyone else here moved to space ${code}.`,
    );
  }

  /**
   * Someone in this space removed a person and sent the new code: this device follows
   * (the server relays it only from someone in the same space), and says who did what.
   * @param {{code?: unknown, source?: unknown, removed?: unknown}} data
   */
  followMove(data) {
    const code = cleanSpaceCode(data.code);
    const from = typeof data.source === 'string' ? this.roster.get(data.source) : undefined;
    if (!code || !from || !this.signalling.space) return;
    const removed = typeof data.removed === 'string' ? this.roster.get(data.removed) : undefined;
    const who = shownText(from.name);
    const what = removed
      ? `${who} removed ${shownText(removed.name)} from this space`
      : `${who} moved this space`;
    this.move(code, `${what}: you moved with them to space ${code}.`);
  }

  render() {
    const code = this.signalling.space;
    const { el } = this;
    this.summary.textContent = code
      ? `Space ${code}`
      : this.required
        ? 'Choose a space'
        : 'Space: open network';
    el.title.textContent = code ? `People in space ${code}` : 'People on this network';
    el.current.hidden = !code;
    el.needed.hidden = !(this.required && !code);
    el.leave.hidden = !this.openSpace || !code;
    el.create.textContent = code ? 'Create a new space' : 'Create a space';
    this.changed(code, this.required && !code);
    paintInvite(code);
    this.renderMembers();
    if (!code) return;
    const link = spaceLink(this.origin, code);
    el.code.textContent = code;
    el.link.href = link;
    el.link.textContent = link;
    const qr = `/qr/text.svg?text=${encodeURIComponent(link)}`;
    if (el.qr.getAttribute('src') !== qr) el.qr.src = qr;
    el.qr.alt = `QR code for ${link}`;
  }
}

/**
 * "Invite a phone" carries the space (issue 19, 2: a phone that scanned it landed in the
 * open network, where it saw nobody): its addresses, its QR code and what Copy copies.
 * @param {string | null} code
 */
function paintInvite(code) {
  const links = /** @type {NodeListOf<HTMLAnchorElement>} */ (document.querySelectorAll('.invite .url a'));
  for (const link of links) {
    link.dataset.base ??= link.href;
    const address = code ? spaceLink(new URL(link.dataset.base).origin, code) : link.dataset.base;
    link.href = address;
    link.textContent = address;
  }
  const first = links[0];
  const qr = /** @type {HTMLImageElement | null} */ (document.querySelector('[data-testid="invite-qr"]'));
  if (first && qr) {
    qr.dataset.base ??= qr.getAttribute('src') || '';
    const src = code ? `/qr/text.svg?text=${encodeURIComponent(first.href)}` : qr.dataset.base;
    if (qr.getAttribute('src') !== src) qr.src = src;
    qr.alt = `QR code for ${first.textContent}`;
  }
  const where = /** @type {HTMLElement | null} */ (document.querySelector('[data-testid="invite-where"]'));
  if (where) {
    where.textContent = code ? `It opens space ${code}, where the phone sees the people you see.` : '';
    where.hidden = !code;
  }
}

/** @param {string | null} code */
function remember(code) {
  try {
    if (code) localStorage.setItem(SPACE_KEY, code);
    else localStorage.removeItem(SPACE_KEY);
  } catch {
    // storage blocked: the space lasts for this page only
  }
}
