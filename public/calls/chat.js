// The chat panel: lines over the call's data channels, unread count, typing indicator. It
// subscribes to the `chat` and `typing` messages of every link in the call and sends
// through each of them: in a group call a line goes to everyone, with the sender's name.

import { typingText } from './grouplogic.js';
import { shownText } from '../core/plaintext.js';
import { $, setLabel } from '../core/dom.js';

const TYPING_REPEAT_MS = 2000; // while typing, say so again this often
const TYPING_IDLE_MS = 3000; // no keystroke for this long: stopped typing
const TYPING_SHOW_MS = 6000; // hide a stale indicator whose "stopped" was lost
const MAX_LINE = 2000;
// A web address as people paste it: scheme, then anything up to a space or a quote/bracket
// that usually surrounds it. Trailing punctuation is the sentence's, not the address's.
const WEB_ADDRESS = /\b(?:https?:\/\/|www\.)[^\s<>"'`]+/giu; // "www.example.com" too, as https
const TRAILING = /[.,;:!?)\]}'"»”’]+$/u;

/**
 * Chat text as DOM nodes: http(s) addresses become links that open in a new tab without
 * telling the site who sent you; everything else (javascript:, data:, markup) stays text.
 * @param {string} raw
 * @returns {(string | HTMLAnchorElement)[]}
 */
export function linkify(raw) {
  const text = shownText(raw, { lines: true }); // no bidi override turns a link or a word around
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
    try {
      url = new URL(/^www\./i.test(address) ? `https://${address}` : address);
    } catch {
      continue;
    }
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
    /** @type {Set<import('./peerlink.js').PeerLink>} the links in the call, first one first */
    this.links = new Set();
    /** @type {WeakMap<import('./peerlink.js').PeerLink, AbortSignal>} the call each link is followed for */
    this.following = new WeakMap();
    /** More than one other person has been in this call: lines show who wrote them. */
    this.group = false;
    /** @type {Map<string, ReturnType<typeof setTimeout>>} who is typing (peer id -> hide timer) */
    this.typists = new Map();
    this.unread = 0;
    this.typingSentAt = 0;
    this.idleTimer = 0;
    /**
     * The conversation kept on this device with the person of a 1:1 call
     * (public/data/conversations.js): its lines show first, and the call's lines join it.
     * @type {{history(peerId: string): {text: string, mine: boolean}[],
     *         record(link: import('./peerlink.js').PeerLink, text: string, mine: boolean): void} | null}
     */
    this.conversation = null;
    this.input.maxLength = MAX_LINE;
    this.input.oninput = () => this.typed();
    $('chat-form').onsubmit = (event) => {
      event.preventDefault();
      this.submit();
    };
  }

  /** The first person in the call (the 1:1 chat is with them). */
  get call() {
    return this.links.values().next().value ?? null;
  }

  /**
   * A link joins the call's chat; the first starts a fresh log.
   * @param {import('./peerlink.js').PeerLink} link
   */
  attach(link) {
    if (!this.links.size) {
      this.log.replaceChildren();
      this.unread = 0;
      this.group = false;
      this.paintBadge();
      this.clearTyping();
      for (const line of this.conversation?.history(link.peerId) || [])
        this.add(line.text, line.mine, link, { replay: true });
    }
    this.links.add(link);
    if (this.links.size > 1) this.group = true;
    this.setReady();
    if (this.following.get(link) === link.scope.signal) return;
    this.following.set(link, link.scope.signal);
    const thisCall = { signal: link.scope.signal }; // the next call with them starts clean
    link.subscribe('chat', (/** @type {string} */ text) => this.add(text, false, link), thisCall);
    link.subscribe('typing', (/** @type {boolean} */ on) => this.showTyping(on, link), thisCall);
    link.during('channel', () => this.setReady());
  }

  /**
   * Someone left the call: their typing indicator goes with them.
   * @param {import('./peerlink.js').PeerLink} link
   */
  remove(link) {
    this.links.delete(link);
    this.showTyping(false, link);
    this.setReady();
  }

  detach() {
    this.links.clear();
    this.close();
    clearTimeout(this.idleTimer);
    this.clearTyping();
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

  /** The input opens once any link's channel is open. */
  setReady() {
    const links = [...this.links];
    const ready = links.some((link) => link.channels?.isOpen());
    const was = !this.input.disabled;
    this.input.disabled = !ready;
    const to = links.length > 1 ? 'everyone' : this.call?.peerName;
    this.input.placeholder = ready ? `Message ${to}` : 'Chat opens when the call connects';
    if (ready && !was && this.isOpen) this.input.focus();
  }

  /** Send to every link in the call. @param {string} type @param {unknown} data */
  sendAll(type, data) {
    let sent = false;
    for (const link of this.links) if (link.channels?.send(type, data)) sent = true;
    return sent;
  }

  submit() {
    const text = this.input.value.trim();
    if (!text || !this.sendAll('chat', text)) return; // every channel closed: keep the text
    this.add(text, true);
    this.input.value = '';
    this.stopTyping();
  }

  typed() {
    if (!this.input.value) return this.stopTyping();
    if (Date.now() - this.typingSentAt > TYPING_REPEAT_MS) {
      this.sendAll('typing', true);
      this.typingSentAt = Date.now();
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.idleTimer);
    if (this.typingSentAt) this.sendAll('typing', false);
    this.typingSentAt = 0;
  }

  /**
   * Typing indicators, one per person ("Ann and Bob are typing…").
   * @param {boolean} on @param {import('./peerlink.js').PeerLink} link
   */
  showTyping(on, link) {
    clearTimeout(this.typists.get(link.peerId));
    this.typists.delete(link.peerId);
    if (on)
      this.typists.set(
        link.peerId,
        setTimeout(() => this.showTyping(false, link), TYPING_SHOW_MS),
      );
    this.paintTyping();
  }

  clearTyping() {
    for (const timer of this.typists.values()) clearTimeout(timer);
    this.typists.clear();
    this.paintTyping();
  }

  paintTyping() {
    const names = [...this.links]
      .filter((link) => this.typists.has(link.peerId))
      .map((link) => link.peerName);
    this.typing.hidden = !names.length;
    this.typing.textContent = typingText(names);
  }

  /**
   * @param {string} text @param {boolean} mine
   * @param {import('./peerlink.js').PeerLink | null} [link] who sent it
   * @param {{replay?: boolean, kept?: boolean}} [options] replay: an earlier line of the
   * conversation, not news; kept: the conversation has it already (it came outside the call)
   */
  add(text, mine, link = null, { replay = false, kept = replay } = {}) {
    if (link && !replay) this.showTyping(false, link);
    const from = link?.peerName || '';
    const item = document.createElement('li');
    item.className = mine ? 'mine' : '';
    item.dataset.testid = 'chat-message';
    const who = document.createElement('span');
    // In a group call, everyone sees who wrote a line; in a 1:1 call only screen readers need it.
    who.className = this.group && !mine ? 'from' : 'visually-hidden';
    who.textContent = mine ? 'You: ' : this.group ? from : `${from}: `;
    item.append(who, ...linkify(text.slice(0, MAX_LINE))); // text and links, never markup
    this.log.append(item);
    this.log.scrollTop = this.log.scrollHeight;
    const only = this.call;
    if (!kept && only && this.links.size === 1 && !this.group) this.conversation?.record(only, text, mine);
    if (!mine && !this.isOpen && !replay) {
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
