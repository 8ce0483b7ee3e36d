// The chat panel: lines over the call's data channel, unread count, typing indicator. It
// subscribes to the `chat` and `typing` messages and sends through the link's channels.

import { onMessage } from './channels.js';
import { $, setLabel } from './ui.js';

const TYPING_REPEAT_MS = 2000; // while typing, say so again this often
const TYPING_IDLE_MS = 3000; // no keystroke for this long: stopped typing
const TYPING_SHOW_MS = 6000; // hide a stale indicator whose "stopped" was lost
const MAX_LINE = 2000;
// A web address as people paste it: scheme, then anything up to a space or a quote/bracket
// that usually surrounds it. Trailing punctuation is the sentence's, not the address's.
const WEB_ADDRESS = /\bhttps?:\/\/[^\s<>"'`]+/giu;
const TRAILING = /[.,;:!?)\]}'"»”’]+$/u;

/**
 * Chat text as DOM nodes: http(s) addresses become links that open in a new tab without
 * telling the site who sent you; everything else (javascript:, data:, markup) stays text.
 * @param {string} text
 * @returns {(string | HTMLAnchorElement)[]}
 */
export function linkify(text) {
  /** @type {(string | HTMLAnchorElement)[]} */
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(WEB_ADDRESS)) {
    let address = match[0];
    // Keep a closing bracket that belongs to the address, as in a Wikipedia link.
    const tail = address.match(TRAILING)?.[0] || '';
    address = address.slice(0, address.length - tail.length);
    if (tail.startsWith(')') && address.includes('(') && !address.includes(')')) address += ')';
    let url;
    try { url = new URL(address); } catch { continue; }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    const start = /** @type {number} */ (match.index);
    parts.push(text.slice(last, start));
    const link = document.createElement('a');
    link.href = url.href;
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    link.textContent = address;
    parts.push(link);
    last = start + address.length;
  }
  parts.push(text.slice(last));
  return parts.filter((part) => part !== '');
}

export class ChatPanel {
  constructor() {
    this.panel = $('chat');
    this.log = $('chat-log');
    this.input = /** @type {HTMLInputElement} */ ($('chat-input'));
    this.typing = $('typing');
    this.button = $('toggle-chat');
    /** @type {import('./peerlink.js').PeerLink | null} */ this.call = null;
    this.unread = 0;
    this.typingSentAt = 0;
    this.idleTimer = 0;
    this.shownTimer = 0;
    this.input.maxLength = MAX_LINE;
    this.input.oninput = () => this.typed();
    $('chat-form').onsubmit = (event) => {
      event.preventDefault();
      this.submit();
    };
  }

  /** @param {import('./peerlink.js').PeerLink} call */
  attach(call) {
    this.call = call;
    this.log.replaceChildren();
    this.unread = 0;
    this.paintBadge();
    this.showTyping(false);
    this.setReady(false);
    const thisCall = { signal: call.scope.signal }; // the next call with them starts clean
    onMessage(call, 'chat', (/** @type {string} */ text) => this.add(text, false), thisCall);
    onMessage(call, 'typing', (/** @type {boolean} */ on) => this.showTyping(on), thisCall);
    call.during('channel', () => this.setReady(true));
  }

  detach() {
    this.call = null;
    this.close();
    clearTimeout(this.idleTimer);
    clearTimeout(this.shownTimer);
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  toggle() {
    if (this.isOpen) this.close();
    else this.open();
  }

  open() {
    this.panel.hidden = false;
    this.button.setAttribute('aria-expanded', 'true');
    this.unread = 0;
    this.paintBadge();
    this.log.scrollTop = this.log.scrollHeight;
    this.input.focus();
  }

  close() {
    if (this.panel.contains(document.activeElement)) this.button.focus(); // focus stays on the way
    this.panel.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
  }

  /** @param {boolean} ready */
  setReady(ready) {
    this.input.disabled = !ready;
    this.input.placeholder = ready ? `Message ${this.call?.peerName}` : 'Chat opens when the call connects';
    if (ready && this.isOpen) this.input.focus();
  }

  submit() {
    const text = this.input.value.trim();
    if (!text || !this.call?.channels?.send('chat', text)) return; // channel closed: keep the text
    this.add(text, true);
    this.input.value = '';
    this.stopTyping();
  }

  typed() {
    if (!this.input.value) return this.stopTyping();
    if (Date.now() - this.typingSentAt > TYPING_REPEAT_MS) {
      this.call?.channels?.send('typing', true);
      this.typingSentAt = Date.now();
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.idleTimer);
    if (this.typingSentAt) this.call?.channels?.send('typing', false);
    this.typingSentAt = 0;
  }

  /** @param {boolean} on */
  showTyping(on) {
    this.typing.hidden = !on;
    this.typing.textContent = on ? `${this.call?.peerName} is typing…` : '';
    clearTimeout(this.shownTimer);
    if (on) this.shownTimer = setTimeout(() => this.showTyping(false), TYPING_SHOW_MS);
  }

  /** @param {string} text @param {boolean} mine */
  add(text, mine) {
    if (!mine) this.showTyping(false);
    const item = document.createElement('li');
    item.className = mine ? 'mine' : '';
    item.dataset.testid = 'chat-message';
    const who = document.createElement('span');
    who.className = 'visually-hidden';
    who.textContent = mine ? 'You: ' : `${this.call?.peerName}: `;
    item.append(who, ...linkify(text.slice(0, MAX_LINE))); // text and links, never markup
    this.log.append(item);
    this.log.scrollTop = this.log.scrollHeight;
    if (!mine && !this.isOpen) {
      this.unread += 1;
      this.paintBadge();
    }
  }

  paintBadge() {
    const badge = $('chat-badge');
    badge.hidden = !this.unread;
    badge.textContent = String(this.unread);
    setLabel(this.button, this.unread ? `Chat, ${this.unread} unread` : 'Chat');
  }
}
