// Messages outside calls: conversations kept on this device, and the messenger that
// sends and receives their lines over data links (docs/protocol.md §9.1: `message` as a
// request whose answer means "delivered", `typing`). No DOM: the screens are in
// public/data/messageview.js.

import { MAX_TEXT_CHARS } from './datalogic.js';
import { Emitter } from '../core/events.js';

export const STORAGE_KEY = 'lanCall.conversations';
export const MAX_LINES = 200; // per person, the newest kept
export const MAX_PEOPLE = 30; // conversations kept, the most recent
const DELIVERY_TIMEOUT_MS = 10000;

/**
 * @typedef {'sending' | 'delivered' | 'failed'} Status of a line we sent
 * @typedef {{id: string, text: string, mine: boolean, at: number, status?: Status, error?: string}} Line
 * @typedef {{name: string, unread: number, updated: number, lines: Line[]}} Conversation
 * @typedef {Pick<Storage, 'getItem' | 'setItem'>} KeyValue
 */

/** A new line id: unique enough between two people. */
export function lineId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** @param {unknown} line @returns {line is Line} */
function isStoredLine(line) {
  const l = /** @type {any} */ (line);
  return (
    typeof l === 'object' &&
    l !== null &&
    typeof l.id === 'string' &&
    typeof l.text === 'string' &&
    typeof l.mine === 'boolean' &&
    typeof l.at === 'number'
  );
}

/**
 * Conversations by peer id, in localStorage (capped: MAX_PEOPLE people, MAX_LINES lines
 * each). Events: `changed` (peerId).
 */
export class ConversationStore extends Emitter {
  /** @param {KeyValue | null} [storage] */
  constructor(storage = globalThis.localStorage ?? null) {
    super();
    this.storage = storage;
    /** @type {Map<string, Conversation>} */
    this.conversations = this.load();
  }

  /** @returns {Map<string, Conversation>} */
  load() {
    const map = new Map();
    let saved;
    try {
      saved = JSON.parse(this.storage?.getItem(STORAGE_KEY) || '{}');
    } catch {
      return map;
    }
    for (const [peerId, c] of Object.entries(saved?.people || {})) {
      if (typeof c !== 'object' || c === null || !Array.isArray(c.lines)) continue;
      const lines = c.lines
        .filter(isStoredLine)
        .slice(-MAX_LINES)
        .map((/** @type {Line} */ line) =>
          // A line still on its way when the page went away never got its answer.
          line.status === 'sending'
            ? { ...line, status: /** @type {Status} */ ('failed'), error: 'Not sent: the page was closed.' }
            : line,
        );
      map.set(peerId, {
        name: typeof c.name === 'string' ? c.name : '',
        unread: Number.isInteger(c.unread) && c.unread > 0 ? c.unread : 0,
        updated: typeof c.updated === 'number' ? c.updated : 0,
        lines,
      });
    }
    return map;
  }

  save() {
    if (!this.storage) return;
    const recent = [...this.conversations.entries()].sort((a, b) => b[1].updated - a[1].updated);
    for (const [peerId] of recent.slice(MAX_PEOPLE)) this.conversations.delete(peerId);
    for (let keep = Math.min(recent.length, MAX_PEOPLE); keep >= 0; keep -= 1) {
      try {
        this.storage.setItem(
          STORAGE_KEY,
          JSON.stringify({ version: 1, people: Object.fromEntries(recent.slice(0, keep)) }),
        );
        return;
      } catch {
        // Storage full: keep fewer conversations (the oldest go first).
      }
    }
  }

  /** @param {string} peerId */
  get(peerId) {
    return this.conversations.get(peerId);
  }

  /** @param {string} peerId */
  lines(peerId) {
    return this.conversations.get(peerId)?.lines || [];
  }

  /** @param {string} peerId */
  unread(peerId) {
    return this.conversations.get(peerId)?.unread || 0;
  }

  /**
   * Add a line. Returns false if this conversation has it already (a retry that had
   * arrived, or a message seen twice).
   * @param {string} peerId @param {string} name @param {Line} line @param {{unread?: boolean}} [options]
   */
  add(peerId, name, line, { unread = false } = {}) {
    let conversation = this.conversations.get(peerId);
    if (!conversation)
      this.conversations.set(peerId, (conversation = { name, unread: 0, updated: 0, lines: [] }));
    if (conversation.lines.some((known) => known.id === line.id)) return false;
    if (name) conversation.name = name;
    conversation.lines.push({ ...line, text: line.text.slice(0, MAX_TEXT_CHARS) });
    if (conversation.lines.length > MAX_LINES)
      conversation.lines.splice(0, conversation.lines.length - MAX_LINES);
    conversation.updated = Date.now();
    if (unread) conversation.unread += 1;
    this.changed(peerId);
    return true;
  }

  /** @param {string} peerId @param {string} id @param {Partial<Line>} changes */
  update(peerId, id, changes) {
    const line = this.conversations.get(peerId)?.lines.find((l) => l.id === id);
    if (!line) return;
    Object.assign(line, changes);
    if (changes.status && changes.status !== 'failed') delete line.error;
    this.changed(peerId);
  }

  /** @param {string} peerId */
  markRead(peerId) {
    const conversation = this.conversations.get(peerId);
    if (!conversation?.unread) return;
    conversation.unread = 0;
    this.changed(peerId);
  }

  /** @param {string} peerId */
  changed(peerId) {
    this.save();
    this.emit('changed', peerId);
  }
}

/**
 * Sends and receives conversation lines over data links. Events: `typing` ({peerId, on}),
 * `line` ({peerId, line, via}: a line was added; via `link` or `call`).
 */
export class Messenger extends Emitter {
  /**
   * @param {import('./datalinks.js').DataLinks} dataLinks @param {ConversationStore} store
   * @param {{get(id: string): {name: string} | undefined}} people
   */
  constructor(dataLinks, store, people) {
    super();
    this.dataLinks = dataLinks;
    this.store = store;
    this.people = people;
    /** @type {string | null} the conversation on screen: its lines arrive read */
    this.viewing = null;
    /**
     * @type {Map<string, Set<string>>} lines refused while that person's link was held
     * (peer id -> line ids)
     */
    this.held = new Map();
    dataLinks.subscribe('message', (line, from) => {
      this.received(
        from.peerId,
        from.peerName,
        { id: line.id, text: line.text, at: line.at, mine: false },
        'link',
      );
      return {}; // delivered (also when we had it already: their retry after a lost answer)
    });
    // An older data-link peer may send a bare `chat` line (docs/protocol.md §6).
    dataLinks.subscribe('chat', (text, from) => {
      this.received(from.peerId, from.peerName, { id: lineId(), text, at: Date.now(), mine: false }, 'link');
    });
    dataLinks.subscribe('typing', (on, from) => this.emit('typing', { peerId: from.peerId, on }));
  }

  /** @param {string} peerId */
  nameOf(peerId) {
    return this.people.get(peerId)?.name || this.store.get(peerId)?.name || 'Someone';
  }

  /**
   * A line from them (over the data link, or in a 1:1 call's chat).
   * @param {string} peerId @param {string} name @param {Line} line @param {'link' | 'call'} via
   */
  received(peerId, name, line, via) {
    const unread =
      via === 'link' && !(this.viewing === peerId && globalThis.document?.visibilityState !== 'hidden');
    if (this.store.add(peerId, name, line, { unread })) this.emit('line', { peerId, line, via });
  }

  /**
   * Send a line; it shows at once as sending, then delivered or failed.
   * @param {string} peerId @param {string} text
   */
  send(peerId, text) {
    /** @type {Line} */
    const line = {
      id: lineId(),
      text: text.slice(0, MAX_TEXT_CHARS),
      mine: true,
      at: Date.now(),
      status: 'sending',
    };
    this.store.add(peerId, this.nameOf(peerId), line);
    this.emit('line', { peerId, line, via: 'link' });
    this.deliver(peerId, line);
    return line;
  }

  /**
   * A line we wrote in a 1:1 call's chat: kept, already delivered.
   * @param {string} peerId @param {string} text
   */
  sentInCall(peerId, text) {
    /** @type {Line} */
    const line = { id: lineId(), text, mine: true, at: Date.now(), status: 'delivered' };
    if (this.store.add(peerId, this.nameOf(peerId), line)) this.emit('line', { peerId, line, via: 'call' });
  }

  /**
   * Try a line that was not delivered again (same id: never shown twice).
   * @param {string} peerId @param {string} id
   */
  retry(peerId, id) {
    const line = this.store.lines(peerId).find((l) => l.id === id && l.mine);
    if (!line || line.status !== 'failed') return;
    this.store.update(peerId, id, { status: 'sending' });
    this.deliver(peerId, line);
  }

  /** @param {string} peerId @param {Line} line */
  async deliver(peerId, line) {
    try {
      await this.dataLinks.request(
        peerId,
        'message',
        { id: line.id, text: line.text, at: line.at },
        { timeoutMs: DELIVERY_TIMEOUT_MS },
      );
      this.store.update(peerId, line.id, { status: 'delivered' });
    } catch (error) {
      const words = error instanceof Error && error.message ? error.message : 'Not delivered.';
      if (/** @type {any} */ (error)?.code === 'held') {
        if (!this.held.has(peerId)) this.held.set(peerId, new Set());
        this.held.get(peerId)?.add(line.id);
      }
      this.store.update(peerId, line.id, { status: 'failed', error: words });
    }
  }

  /** The user let a held link through: the lines it refused go now. @param {string} peerId */
  retryHeld(peerId) {
    const ids = this.held.get(peerId) || new Set();
    this.held.delete(peerId);
    for (const id of ids) this.retry(peerId, id);
  }

  /**
   * Tell them we are typing (or stopped); this opens the link early, as a line usually follows.
   * @param {string} peerId @param {boolean} on
   */
  typing(peerId, on) {
    if (!this.people.get(peerId)) return;
    this.dataLinks.send(peerId, 'typing', on).catch(() => {}); // a lost indicator times out there
  }
}
