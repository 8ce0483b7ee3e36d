// The screens of messages outside calls: a Message button beside every listed person
// (with the unread count), and the conversation view (lines, delivery state with Retry,
// typing indicator). Text is always text: addresses become links through chat.js's
// linkify, nothing else becomes markup.

import { linkify } from '../calls/chat.js';
import { contactEvents } from '../verify/contacts.js';
import { lineId } from './conversations.js';
import { typingText } from '../calls/grouplogic.js';
import { linkWarning, undecidedLink } from '../verify/holdwarning.js';
import { $ } from '../core/dom.js';
import { paintAvatar, paintName } from '../lobby/lobby.js';

const TYPING_REPEAT_MS = 2000; // while typing, say so again this often
const TYPING_IDLE_MS = 3000; // no keystroke for this long: stopped typing
const TYPING_SHOW_MS = 6000; // hide a stale indicator whose "stopped" was lost

/**
 * @typedef {import('./conversations.js').Line} Line
 * @typedef {{get(id: string): {id: string, name: string, kind: string} | undefined}} People
 */

export class ConversationView {
  /**
   * @param {import('./conversations.js').Messenger} messenger
   * @param {People} people who is listed now
   * @param {(peerId: string) => void} onCall the Call button
   */
  constructor(messenger, people, onCall) {
    this.messenger = messenger;
    this.store = messenger.store;
    this.people = people;
    this.panel = $('conversation');
    this.log = $('conversation-log');
    this.input = /** @type {HTMLInputElement} */ ($('conversation-input'));
    this.typingLine = $('conversation-typing');
    /** @type {string | null} */
    this.peerId = null;
    /** @type {HTMLElement | null} where focus goes back to */
    this.opener = null;
    this.typingSentAt = 0;
    this.idleTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);
    /** @type {Map<string, ReturnType<typeof setTimeout>>} who is typing to us (peer id -> hide timer) */
    this.typists = new Map();

    $('people').addEventListener('click', (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest('[data-action="message"]');
      const peerId = button?.closest('li')?.querySelector('[data-peer-id]')?.getAttribute('data-peer-id');
      if (peerId) this.open(peerId, /** @type {HTMLElement} */ (button));
    });
    this.panel.addEventListener('click', (event) => {
      const target = /** @type {HTMLElement} */ (event.target);
      const action = target.closest('[data-action]')?.getAttribute('data-action');
      if (action === 'close-conversation') this.close();
      else if (action === 'conversation-call' && this.peerId) {
        const peerId = this.peerId;
        this.close();
        onCall(peerId);
      } else if (action === 'retry' && this.peerId) {
        const id = target.closest('li')?.getAttribute('data-line-id');
        if (id) this.messenger.retry(this.peerId, id);
      }
    });
    this.panel.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.close();
    });
    $('conversation-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener('input', () => this.typed());
    this.store.on('changed', (/** @type {string} */ peerId) => {
      if (peerId === this.peerId) this.paintLog();
      this.paintPeople();
    });
    messenger.on('typing', ({ peerId, on }) => this.showTyping(peerId, on));
    messenger.on('line', ({ peerId, line }) => !line.mine && this.showTyping(peerId, false));
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.peerId) this.store.markRead(this.peerId);
    });
    // The verified badge in the header, and the warning while their data link is held.
    /** @type {import('./datalinks.js').DataLink | null} the link the warning is about */
    this.warnedLink = null;
    this.warning = document.createElement('div');
    this.warning.hidden = true;
    this.panel.querySelector('.conversation-head')?.after(this.warning);
    const repaint = () => this.isOpen && this.paintHead();
    contactEvents.on('change', repaint);
    messenger.dataLinks.guard.on('change', repaint);
    messenger.dataLinks.on('ended', repaint);
    messenger.dataLinks.on('remote-hold', repaint);
    messenger.dataLinks.on('kept', repaint);
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  /** Show the conversation with this person. @param {string} peerId @param {HTMLElement | null} [opener] */
  open(peerId, opener = null) {
    if (this.peerId && this.peerId !== peerId) this.stopTyping();
    this.peerId = peerId;
    this.messenger.viewing = peerId;
    this.opener = opener;
    this.panel.hidden = false;
    this.store.markRead(peerId);
    this.paintHead();
    this.paintLog();
    this.paintTyping();
    this.input.focus();
  }

  close() {
    if (!this.isOpen) return;
    this.stopTyping();
    this.panel.hidden = true;
    this.peerId = null;
    this.messenger.viewing = null;
    if (this.opener?.isConnected) this.opener.focus();
  }

  submit() {
    const text = this.input.value.trim();
    if (!text || !this.peerId) return;
    this.messenger.send(this.peerId, text);
    this.input.value = '';
    this.stopTyping();
  }

  typed() {
    if (!this.peerId) return;
    if (!this.input.value) return this.stopTyping();
    if (Date.now() - this.typingSentAt > TYPING_REPEAT_MS) {
      this.messenger.typing(this.peerId, true);
      this.typingSentAt = Date.now();
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.idleTimer);
    if (this.typingSentAt && this.peerId) this.messenger.typing(this.peerId, false);
    this.typingSentAt = 0;
  }

  /** @param {string} peerId @param {boolean} on */
  showTyping(peerId, on) {
    clearTimeout(this.typists.get(peerId));
    this.typists.delete(peerId);
    if (on)
      this.typists.set(
        peerId,
        setTimeout(() => this.showTyping(peerId, false), TYPING_SHOW_MS),
      );
    this.paintTyping();
  }

  paintTyping() {
    const on = Boolean(this.peerId && this.typists.has(this.peerId));
    this.typingLine.hidden = !on;
    this.typingLine.textContent = on ? typingText([this.nameOf(this.peerId || '')]) : '';
  }

  /** @param {string} peerId */
  nameOf(peerId) {
    return this.messenger.nameOf(peerId);
  }

  paintHead() {
    const peerId = this.peerId || '';
    const name = this.nameOf(peerId);
    paintName($('conversation-name'), name, peerId);
    paintAvatar($('conversation-avatar'), name, peerId);
    const here = Boolean(this.people.get(peerId));
    const link = this.messenger.dataLinks.links.get(peerId);
    $('conversation-status').textContent = !here
      ? 'Not here right now: messages will not be delivered.'
      : link?.remoteHold
        ? `Waiting for ${name} to confirm your device: your messages arrive if they do.`
        : '';
    /** @type {HTMLButtonElement} */ (
      this.panel.querySelector('[data-action="conversation-call"]')
    ).disabled = !here;
    this.input.placeholder = `Message ${name}`;
    this.paintWarning();
  }

  /** A held data link: the call screen's warning and choices, above the lines. */
  paintWarning() {
    const link = this.peerId ? undecidedLink(this.messenger.dataLinks, this.peerId) : null;
    this.warning.hidden = !link;
    if (!link) {
      this.warnedLink = null;
      this.warning.replaceChildren();
    } else if (this.warnedLink !== link || !this.warning.firstChild) {
      this.warnedLink = link;
      const peerId = link.peerId;
      this.warning.replaceChildren(linkWarning(link, { released: () => this.messenger.retryHeld(peerId) }));
    }
    // Someone tried to write while the link is held: say so (issue 19, 5); shown if it goes on.
    const kept = (link?.channels?.kept || []).filter(
      ({ type, data }) => type === 'request' && /** @type {any} */ (data)?.type === 'message',
    ).length;
    let note = /** @type {HTMLElement | null} */ (
      this.warning.querySelector('[data-testid="kept-messages"]')
    );
    if (kept && !note) {
      note = document.createElement('p');
      note.className = 'small';
      note.dataset.testid = 'kept-messages';
      this.warning.firstElementChild?.append(note);
    }
    const messages = kept === 1 ? 'a message' : `${kept} messages`;
    if (note)
      note.textContent = kept
        ? `${link?.peerName} sent ${messages} meanwhile: ` +
          `${kept === 1 ? 'it shows' : 'they show'} if you choose “It’s a new device”.`
        : '';
  }

  paintLog() {
    const peerId = this.peerId || '';
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    this.log.replaceChildren(...this.store.lines(peerId).map((line) => this.item(line)));
    if (atBottom || this.log.lastElementChild?.classList.contains('mine'))
      this.log.scrollTop = this.log.scrollHeight;
    if (this.isOpen && document.visibilityState !== 'hidden') this.store.markRead(peerId);
  }

  /** @param {Line} line */
  item(line) {
    const li = document.createElement('li');
    li.dataset.testid = 'conversation-message';
    li.dataset.lineId = line.id;
    if (line.mine) li.className = line.status === 'failed' ? 'mine failed' : 'mine';
    const who = document.createElement('span');
    who.className = 'visually-hidden';
    who.textContent = line.mine ? 'You: ' : `${this.nameOf(this.peerId || '')}: `;
    li.append(who, ...linkify(line.text));
    if (line.mine && line.status && line.status !== 'delivered') {
      const status = document.createElement('span');
      status.className = 'line-status';
      status.dataset.testid = 'line-status';
      status.textContent = line.status === 'sending' ? 'Sending…' : 'Not delivered';
      if (line.status === 'failed') {
        status.title = line.error || '';
        const why = document.createElement('span');
        why.className = 'visually-hidden';
        why.textContent = line.error ? `: ${line.error}` : '';
        const retry = document.createElement('button');
        retry.type = 'button';
        retry.className = 'retry';
        retry.dataset.action = 'retry';
        retry.dataset.testid = 'retry-message';
        retry.textContent = 'Retry';
        status.append(why, retry);
      }
      li.append(status);
    }
    return li;
  }

  /** The Message buttons of the people list: each with its unread count. */
  paintPeople() {
    for (const item of $('people').children) {
      const peerId = item.querySelector('[data-peer-id]')?.getAttribute('data-peer-id');
      const button = item.querySelector('[data-action="message"]');
      const badge = /** @type {HTMLElement | null} */ (button?.querySelector('.count') ?? null);
      if (!peerId || !button || !badge) continue;
      const unread = this.store.unread(peerId);
      badge.hidden = !unread;
      badge.textContent = unread > 99 ? '99+' : String(unread);
      button.toggleAttribute('data-unread', unread > 0);
      // The accessible name stays "Message"; the count is its description.
      button.setAttribute('title', unread ? `Message (${unread} unread)` : 'Message');
    }
    if (this.isOpen) this.paintHead();
  }
}

/**
 * A 1:1 call's chat continues the conversation with that person: the chat panel shows
 * the kept lines first, the call's lines are kept, and lines that come over the data
 * link during the call show in the panel too.
 * @param {import('../calls/chat.js').ChatPanel} chat
 * @param {import('./conversations.js').Messenger} messenger
 */
export function continueInCall(chat, messenger) {
  chat.conversation = {
    history: (peerId) => messenger.store.lines(peerId),
    record: (link, text, mine) => {
      if (mine) messenger.sentInCall(link.peerId, text);
      else
        messenger.received(
          link.peerId,
          link.peerName,
          { id: lineId(), text, at: Date.now(), mine: false },
          'call',
        );
    },
  };
  messenger.on('line', ({ peerId, line, via }) => {
    const only = chat.call;
    if (via !== 'link' || !only || only.peerId !== peerId || chat.links.size !== 1 || chat.group) return;
    chat.add(line.text, line.mine, line.mine ? null : only, { kept: true });
  });
}
