// The pure parts of data links (docs/protocol.md §9): the shapes of the request and
// response messages, request bookkeeping with timeouts, and errors that
// say what happened in words. No DOM, no RTCPeerConnection: tested under Node.

import { shownText } from '../core/plaintext.js';

export const MAX_ID_CHARS = 64; // request ids and type names
export const MAX_TEXT_CHARS = 2000; // one message line, as in the call's chat

/** Error codes of a failed `send`, `request` or `channel` (DataLinkError.code). */
export const ERROR_CODES = Object.freeze([
  'timeout', // no response within the request's timeout
  'unreachable', // the link could not be opened (away, offline, no answer)
  'unsupported', // their app cannot take data links
  'gone', // they left the network
  'closed', // the link closed before the answer came
  'unknown-type', // they do not answer requests of this type
  'bad-request', // they found the request's data malformed
  'failed', // their handler failed (message: theirs)
  'bad-response', // the response was malformed
]);

/** What went wrong with one send or request, as a sentence (`message`) and a `code`. */
export class DataLinkError extends Error {
  /** @param {string} code one of ERROR_CODES @param {string} message a sentence for people */
  constructor(code, message) {
    super(message);
    this.name = 'DataLinkError';
    this.code = code;
  }
}

/** @param {unknown} value @returns {value is string} */
export function isShortName(value) {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_CHARS;
}

/** @param {unknown} value @returns {value is Record<string, unknown>} */
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `request` data: `{id, type, data?}` (docs/protocol.md §9).
 * @param {unknown} data @returns {data is {id: string, type: string, data?: unknown}}
 */
export function isRequest(data) {
  return isObject(data) && isShortName(data.id) && isShortName(data.type);
}

/**
 * `response` data: `{id, data?}` or `{id, error: {code, message}}`. Only the id is
 * checked here, so a response whose body is malformed still fails its own request
 * at once (bad-response) instead of timing out.
 * @param {unknown} data @returns {data is {id: string, data?: unknown, error?: unknown}}
 */
export function isResponse(data) {
  return isObject(data) && isShortName(data.id);
}

/**
 * `message` data: one line of a conversation, `{id, text, at}`.
 * @param {unknown} data @returns {data is {id: string, text: string, at: number}}
 */
export function isLine(data) {
  return (
    isObject(data) &&
    isShortName(data.id) &&
    typeof data.text === 'string' &&
    data.text.length > 0 &&
    data.text.length <= MAX_TEXT_CHARS &&
    typeof data.at === 'number' &&
    Number.isFinite(data.at)
  );
}

/**
 * Requests in flight on one link: ids, timeouts, and matching responses to them.
 * @template T
 */
export class Requests {
  /** @param {() => number} [now] */
  constructor(now = Date.now) {
    this.now = now;
    this.counter = 0;
    /**
     * @type {Map<string, {resolve: (value: any) => void, reject: (error: Error) => void,
     *   timer: ReturnType<typeof setTimeout> | undefined, type: string, timeoutMs: number,
     *   timeoutText: string}>}
     */
    this.pending = new Map();
    /**
     * Their side holds the link for its person's decision (docs/verification.md):
     * no clock runs meanwhile.
     */
    this.paused = false;
  }

  /**
   * They hold the link until their person confirms our device: nothing times out while
   * they decide (issue 19, 5: a message failed "didn't answer within 10 s"); once they
   * go on, each request gets its whole time again. @param {boolean} on
   */
  hold(on) {
    this.paused = on;
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      entry.timer = on ? undefined : this.arm(id, entry.timeoutMs, entry.timeoutText);
    }
  }

  /** @param {string} id @param {number} timeoutMs @param {string} timeoutText */
  arm(id, timeoutMs, timeoutText) {
    return setTimeout(() => this.fail(id, new DataLinkError('timeout', timeoutText)), timeoutMs);
  }

  get size() {
    return this.pending.size;
  }

  /**
   * A new request id and the promise of its answer, rejected with a `timeout`
   * DataLinkError (saying `timeoutText`) after `timeoutMs`.
   * @param {string} type @param {number} timeoutMs @param {string} timeoutText
   */
  create(type, timeoutMs, timeoutText) {
    this.counter += 1;
    const id = `${this.now().toString(36)}-${this.counter}-${Math.random().toString(36).slice(2, 8)}`;
    /** @type {Promise<any>} */
    const promise = new Promise((resolve, reject) => {
      const timer = this.paused ? undefined : this.arm(id, timeoutMs, timeoutText);
      this.pending.set(id, { resolve, reject, timer, type, timeoutMs, timeoutText });
    });
    return { id, promise };
  }

  /** @param {string} id @param {Error} error */
  fail(id, error) {
    const entry = this.pending.get(id);
    if (!entry) return false;
    clearTimeout(entry.timer);
    this.pending.delete(id);
    entry.reject(error);
    return true;
  }

  /**
   * A `response` arrived: settle its request. Returns false for an id nobody waits for
   * (late, after a timeout, or made up).
   * @param {{id: string, data?: unknown, error?: unknown}} response
   * @param {string} who their name, for errors
   */
  settle(response, who) {
    const entry = this.pending.get(response.id);
    if (!entry) return false;
    clearTimeout(entry.timer);
    this.pending.delete(response.id);
    const { error } = response;
    if (error === undefined) {
      entry.resolve(response.data);
    } else if (isObject(error) && typeof error.code === 'string' && typeof error.message === 'string') {
      const code = ERROR_CODES.includes(error.code) ? error.code : 'failed';
      entry.reject(new DataLinkError(code, shownText(error.message).slice(0, 300)));
    } else {
      entry.reject(
        new DataLinkError('bad-response', `${who}’s app sent a malformed answer to “${entry.type}”.`),
      );
    }
    return true;
  }

  /** Every request in flight fails with `error` (the link closed). @param {Error} error */
  failAll(error) {
    for (const id of [...this.pending.keys()]) this.fail(id, error);
  }
}

const MAX_BUDGETS = 256; // people whose offers are counted at once

/**
 * How often one person may make us answer a data-link offer (each answer builds a peer
 * connection, with no click: issue 18 finding 33 counted 27 a second from a flooder). A
 * reload or a network change needs one now and then; past `burst` in a row, one more
 * every `refillMs`. Entries for people who stopped are dropped once full again.
 */
export class OfferBudget {
  /** @param {number} [burst] @param {number} [refillMs] */
  constructor(burst = 4, refillMs = 5000) {
    this.burst = burst;
    this.refillMs = refillMs;
    /** @type {Map<string, {tokens: number, at: number}>} */
    this.byPeer = new Map();
  }

  /**
   * Whether an offer from `peerId` at `now` (ms) is answered; it uses one if so.
   * @param {string} peerId @param {number} now
   */
  take(peerId, now) {
    let entry = this.byPeer.get(peerId);
    if (!entry) {
      if (this.byPeer.size >= MAX_BUDGETS) this.sweep(now);
      entry = { tokens: this.burst, at: now };
      this.byPeer.set(peerId, entry);
    }
    entry.tokens = Math.min(this.burst, entry.tokens + (now - entry.at) / this.refillMs);
    entry.at = now;
    if (entry.tokens < 1) return false;
    entry.tokens -= 1;
    return true;
  }

  /** Forget people whose budget is full again; if that is not enough, the oldest. @param {number} now */
  sweep(now) {
    for (const [peerId, entry] of this.byPeer) {
      if (entry.tokens + (now - entry.at) / this.refillMs >= this.burst) this.byPeer.delete(peerId);
    }
    for (const peerId of this.byPeer.keys()) {
      if (this.byPeer.size < MAX_BUDGETS) break;
      this.byPeer.delete(peerId);
    }
  }
}
