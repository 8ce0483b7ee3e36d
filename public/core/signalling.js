// The tab's one signalling WebSocket (docs/protocol.md): ready/identify, relaying, resume,
// leaving on purpose, and a liveness check that notices a frozen server.

import { Emitter } from './events.js';
import { CAPS } from './protocol.js';

/**
 * @typedef {{iceServers: RTCIceServer[], maxMessageBytes: number, maxNameLength: number,
 *            ringTimeoutMs: number, resumeGraceMs: number, maxCallSize?: number,
 *            openSpace?: boolean}} ServerConfig
 * @typedef {'connecting' | 'online' | 'reconnecting' | 'offline'} SocketState the socket to the server
 * (not a peer link)
 */

const TOKEN_KEY = 'lanCall.resume';
// Retries: 250 ms, 500 ms, then every 0.5–1 s ("equal jitter" under a 1 s cap). A
// restarted server is back for everyone within about a second, and the jitter keeps a
// roomful of tabs from arriving in the same instant.
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 1000;
const QUEUE_LIMIT = 200;
const PING_EVERY_MS = 4000;
const DEAD_AFTER_MS = 10000; // nothing at all heard for this long: the link is dead
const PONG_WAIT_MS = 3000; // ...and a ping sent this long ago went unanswered
const CONNECT_TIMEOUT_MS = 5000; // a server that accepts TCP but never says `ready`
const LIVENESS_TICK_MS = 1000;
const RELOAD_KEY_MS = 5000; // a reload key counts as 'coming back' for this long
const GOING_AWAY = 1001; // the server is restarting: come back at once
const REPLACED = 4001; // our id went to a newer socket, with our token

/**
 * Events: `state` (SocketState), `ready` ({version, reconnected}), `peer` (peer data),
 * `signal` ({type, data}: a relayed message), `error` ({code, message, ref, target}).
 */
export class Signalling extends Emitter {
  /** @param {string} name @param {ServerConfig} config the page's copy, until `ready` */
  constructor(name, config) {
    super();
    this.name = name;
    this.config = config;
    /** @type {string | null} our space code (docs/protocol.md §11); null: the open network */
    this.space = null;
    /** @type {string | null} */ this.id = null;
    /** @type {string | null} */ this.token = takeSavedToken();
    /** @type {SocketState} */ this.state = 'connecting';
    /** @type {WebSocket | null} */ this.ws = null;
    this.identified = false;
    this.attempt = 0;
    this.retryTimer = 0;
    this.connectTimer = 0;
    this.livenessTimer = 0;
    this.lastHeard = 0;
    this.lastPing = 0;
    /** The page will reload and come straight back (an update): keep our id, no `leave`. */
    this.returning = false;
    /** @type {string[]} relay frames waiting for the socket to be back */
    this.queue = [];
    addEventListener('online', () => this.reconnectNow());
    addEventListener('offline', () => this.setState('offline'));
    // A phone waking up or a tab brought back: don't wait for the next scheduled retry.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.state !== 'online') this.reconnectNow();
    });
    // F5 / Ctrl+R / Cmd+R: a reload that comes right back, not a leave. (A reload from
    // the toolbar cannot be told apart from closing the tab; it counts as leaving.)
    addEventListener('keydown', (event) => {
      const key = event.key.toLowerCase();
      if (key !== 'f5' && !(key === 'r' && (event.ctrlKey || event.metaKey))) return;
      this.returning = true;
      setTimeout(() => (this.returning = false), RELOAD_KEY_MS);
    });
    addEventListener('pageshow', (event) => {
      if (event.persisted) {
        takeSavedToken();
        this.reconnectNow();
      }
    });
  }

  open() {
    clearTimeout(this.retryTimer);
    this.drop(this.ws, 'reconnecting'); // never two sockets in one tab
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = this.token ? `?resume=${encodeURIComponent(this.token)}` : '';
    const ws = (this.ws = new WebSocket(`${scheme}//${location.host}/rtc${query}`));
    this.identified = false;
    ws.onmessage = (event) => ws === this.ws && this.receive(event.data);
    ws.onclose = (event) => ws === this.ws && this.lost(event.code);
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(
      () => ws === this.ws && !this.identified && this.dead(),
      CONNECT_TIMEOUT_MS,
    );
  }

  /** A network change, a page back from the cache, or "Retry now": replace the socket now. */
  reconnectNow() {
    this.attempt = 0;
    if (this.state !== 'online') this.setState(navigator.onLine === false ? 'offline' : 'reconnecting');
    this.open();
  }

  /**
   * The page is going away (`pagehide`). Leaving for good tells the server, so nobody
   * sees us listed or calls us; a page kept in the back/forward cache or reloading
   * straight back keeps its resume token instead, and peers see no leave/join.
   * @param {boolean} persisted
   */
  pageHidden(persisted) {
    // Written only on the way out: a duplicated tab never shares a live token. It lives in
    // sessionStorage, which a reload keeps and a closed tab loses.
    if (this.token) sessionStorage.setItem(TOKEN_KEY, this.token);
    if (persisted || this.returning) return;
    // Leaving (or a toolbar reload, which a page cannot tell apart): gone from every list
    // at once; a reload is back within the server's rejoin window under the same id.
    if (this.identified) this.sendFrame('leave', {});
  }

  /** The page reloads itself (a new version) and will resume under the same id. */
  reloadSoon() {
    this.returning = true;
  }

  /** @param {WebSocket | null} ws @param {string} why */
  drop(ws, why) {
    if (!ws) return;
    ws.onmessage = ws.onclose = null;
    ws.close(1000, why);
  }

  /** The link is dead though the socket looks open (a frozen server): give it up now. */
  dead() {
    const ws = this.ws;
    this.ws = null; // its close event, whenever the browser gives up on it, is ignored
    this.drop(ws, 'no answer');
    this.lost(0);
  }

  /** @param {number} code */
  lost(code) {
    this.ws = null;
    this.identified = false;
    clearInterval(this.livenessTimer);
    clearTimeout(this.connectTimer);
    clearTimeout(this.retryTimer);
    if (code === REPLACED) this.token = null;
    this.setState(navigator.onLine === false ? 'offline' : 'reconnecting');
    const delay = retryDelay(code === GOING_AWAY ? 0 : this.attempt, Math.random());
    this.attempt = Math.min(this.attempt + 1, 16);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** @param {string} text */
  receive(text) {
    this.lastHeard = Date.now();
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const type = message?.type;
    const data = message?.data && typeof message.data === 'object' ? message.data : {};
    if (type === 'ready') this.ready(message);
    else if (type === 'pong')
      return; // liveness only: `lastHeard` is all it is for
    else if (type === 'error') {
      // A server older than `ping`/`leave` answers them with an error: harmless.
      if (data.ref !== 'ping' && data.ref !== 'leave') this.emit('error', data);
    } else if (type === 'peer') {
      if (typeof data.id === 'string' && data.id !== this.id) this.emit('peer', data);
    } else if (typeof type === 'string') this.emit('signal', { type, data });
  }

  /** @param {{id: string, version: string, token?: string, config?: ServerConfig}} message */
  ready({ id, version, token, config }) {
    const reconnected = this.id !== null && !this.identified;
    this.id = id;
    this.token = token || null;
    this.config = config || this.config;
    this.attempt = 0;
    if (!this.identified) {
      this.identified = true;
      clearTimeout(this.connectTimer);
      this.sendFrame('identify', this.identity());
      for (const frame of this.queue.splice(0)) this.ws?.send(frame);
      this.watchLiveness();
    }
    this.setState('online');
    this.emit('ready', { version, reconnected });
  }

  /**
   * Ping every few seconds; a link that brings nothing for DEAD_AFTER_MS is dead. A ping
   * must also have gone unanswered, so a background tab whose timers the browser slowed
   * down is not mistaken for a dead link.
   */
  watchLiveness() {
    clearInterval(this.livenessTimer);
    this.lastHeard = this.lastPing = Date.now();
    this.livenessTimer = setInterval(() => {
      const now = Date.now();
      const unanswered = this.lastPing > this.lastHeard && now - this.lastPing >= PONG_WAIT_MS;
      if (now - this.lastHeard >= DEAD_AFTER_MS && unanswered) return this.dead();
      if (this.lastPing <= this.lastHeard && now - this.lastPing >= PING_EVERY_MS) {
        this.lastPing = now;
        this.sendFrame('ping', { t: now });
      }
    }, LIVENESS_TICK_MS);
  }

  /** Change our name; everyone sees it at once. @param {string} name */
  rename(name) {
    this.name = name;
    if (this.identified) this.sendFrame('identify', this.identity());
  }

  /**
   * Move to another space (null: the open network); its people replace the list.
   * @param {string | null} space
   */
  setSpace(space) {
    this.space = space;
    if (this.identified) this.sendFrame('identify', this.identity());
  }

  /** Every identify states who we are, what we can do and our space. */
  identity() {
    return {
      id: this.id,
      name: this.name,
      caps: [CAPS.GROUP, CAPS.DATA],
      ...(this.space ? { space: this.space } : {}),
    };
  }

  /**
   * Relay a message to a peer. While the socket is down it waits in a bounded queue, so
   * an ICE restart or a hang-up made during an outage still arrives.
   * @param {string} type @param {object} data
   */
  send(type, data) {
    const frame = JSON.stringify({ type, data });
    if (this.identified && this.ws?.readyState === WebSocket.OPEN) return this.ws.send(frame);
    this.queue.push(frame);
    if (this.queue.length > QUEUE_LIMIT) this.queue.shift();
  }

  /** @param {string} type @param {object} data */
  sendFrame(type, data) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type, data }));
  }

  /** @param {SocketState} state */
  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', state);
  }
}

/**
 * How long to wait before reconnect attempt `attempt` (0 = the first): exponential from
 * BACKOFF_BASE_MS up to BACKOFF_CAP_MS, with "equal jitter" (half fixed, half random).
 * @param {number} attempt @param {number} random in [0, 1)
 */
export function retryDelay(attempt, random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return ceiling / 2 + (random * ceiling) / 2;
}

function takeSavedToken() {
  try {
    const token = sessionStorage.getItem(TOKEN_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
    return token;
  } catch {
    return null;
  }
}
