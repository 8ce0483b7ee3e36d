// The tab's one signalling WebSocket (PROTOCOL.md): ready/identify, relaying, resume.

import { Emitter } from './events.js';

/**
 * @typedef {{iceServers: RTCIceServer[], maxMessageBytes: number, maxNameLength: number,
 *            ringTimeoutMs: number, resumeGraceMs: number}} ServerConfig
 * @typedef {'connecting' | 'online' | 'reconnecting' | 'offline'} LinkState
 */

const TOKEN_KEY = 'lanCall.resume';
const BACKOFF_BASE_MS = 300;
const BACKOFF_CAP_MS = 10000;
const QUEUE_LIMIT = 200;
const GOING_AWAY = 1001; // the server is restarting: come back at once
const REPLACED = 4001; // our id went to a newer socket, with our token

/**
 * Events: `state` (LinkState), `ready` ({version, reconnected}), `peer` (peer data),
 * `signal` ({type, data}: a relayed message), `error` ({code, message, ref}).
 */
export class Signalling extends Emitter {
  /** @param {string} name @param {ServerConfig} config the page's copy, until `ready` */
  constructor(name, config) {
    super();
    this.name = name;
    this.config = config;
    /** @type {string | null} */ this.id = null;
    /** @type {string | null} */ this.token = takeSavedToken();
    /** @type {LinkState} */ this.state = 'connecting';
    /** @type {WebSocket | null} */ this.ws = null;
    this.identified = false;
    this.attempt = 0;
    this.retryTimer = 0;
    /** @type {string[]} relay frames waiting for the socket to be back */
    this.queue = [];
    addEventListener('online', () => this.reconnectNow());
    addEventListener('offline', () => this.setState('offline'));
    // Keep the token over a reload (live reload, pull to refresh) so peers see no
    // leave/join. Written only on the way out: a duplicated tab never shares a live token.
    addEventListener('pagehide', () => this.token && sessionStorage.setItem(TOKEN_KEY, this.token));
    addEventListener('pageshow', (event) => {
      if (event.persisted) {
        takeSavedToken();
        this.reconnectNow();
      }
    });
  }

  open() {
    clearTimeout(this.retryTimer);
    this.ws?.close(1000, 'reconnecting'); // never two sockets in one tab
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = this.token ? `?resume=${encodeURIComponent(this.token)}` : '';
    const ws = (this.ws = new WebSocket(`${scheme}//${location.host}/rtc${query}`));
    this.identified = false;
    ws.onmessage = (event) => ws === this.ws && this.receive(event.data);
    ws.onclose = (event) => ws === this.ws && this.lost(event.code);
  }

  /** A network change or a page back from the cache: the socket may be stale; replace it. */
  reconnectNow() {
    this.attempt = 0;
    if (this.state !== 'online') this.setState('reconnecting');
    this.open();
  }

  /** @param {number} code */
  lost(code) {
    this.ws = null;
    this.identified = false;
    if (code === REPLACED) this.token = null;
    this.setState(navigator.onLine === false ? 'offline' : 'reconnecting');
    // Exponential backoff with "equal jitter", so a restarted server is not hit by every
    // client at the same instant.
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (code === GOING_AWAY ? 0 : this.attempt));
    this.attempt = Math.min(this.attempt + 1, 16);
    this.retryTimer = setTimeout(() => this.open(), ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /** @param {string} text */
  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const type = message?.type;
    const data = message?.data && typeof message.data === 'object' ? message.data : {};
    if (type === 'ready') this.ready(message);
    else if (type === 'error') this.emit('error', data);
    else if (type === 'peer') {
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
      this.sendFrame('identify', { id, name: this.name });
      for (const frame of this.queue.splice(0)) this.ws?.send(frame);
    }
    this.setState('online');
    this.emit('ready', { version, reconnected });
  }

  /** Change our name; everyone sees it at once. @param {string} name */
  rename(name) {
    this.name = name;
    if (this.identified) this.sendFrame('identify', { id: this.id, name });
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

  /** @param {LinkState} state */
  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', state);
  }
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
