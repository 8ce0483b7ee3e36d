// The group-call grid: one tile per member (their video, name, mic-off / camera-off,
// connection state), the active speaker highlighted, a tile tapped to show it large, its
// name tapped to see that member's security code.
// A 1:1 call does not use it: the call screen shows that person full size as always.

import { contactEvents } from '../verify/contacts.js';
import { balancedGrid } from './grouplogic.js';
import { $ } from '../core/dom.js';
import { paintAvatar, paintName } from '../lobby/lobby.js';
import { checkOf } from '../verify/guard.js';

/** @typedef {import('./peerlink.js').PeerLink} PeerLink */

const STATE_WORDS = {
  calling: 'Connecting…',
  ringing: 'Connecting…',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
};

export class TileGrid {
  /**
   * @param {import('../verify/guard.js').Guard} guard each tile shows its member's check
   * @param {() => void} onSoundBlocked a tile's sound needs a tap first (autoplay rules)
   */
  constructor(guard, onSoundBlocked) {
    this.root = $('tiles');
    this.template = /** @type {HTMLTemplateElement} */ ($('tile-template'));
    /** @type {Map<PeerLink, HTMLElement>} */
    this.tiles = new Map();
    /** @type {string | null} the member shown large */
    this.focused = null;
    /** @type {string | null} */
    this.speaker = null;
    this.showing = false;
    this.onSoundBlocked = onSoundBlocked;
    // Your own picture is one more tile of the grid, so it never covers someone's.
    this.self = $('pip');
    this.selfHome = /** @type {Node} */ (this.self.parentNode);
    new ResizeObserver(() => this.layout()).observe(this.root);
    this.root.onclick = (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest('.tile-focus');
      const tile = /** @type {HTMLElement | null} */ (button?.closest('.tile') ?? null);
      if (tile) this.focus(this.focused === tile.dataset.peerId ? null : tile.dataset.peerId || null);
    };
    // Each tile shows its own link's verification (the badge by the name, or a warning mark).
    guard.on('change', () => this.paintAll());
    contactEvents.on('change', () => this.paintAll());
  }

  get size() {
    return this.tiles.size;
  }

  /** @param {PeerLink} link */
  add(link) {
    let tile = this.tiles.get(link);
    if (!tile) {
      tile = /** @type {HTMLElement} */ (this.template.content.firstElementChild?.cloneNode(true));
      tile.dataset.peerId = link.peerId;
      this.tiles.set(link, tile);
      this.root.insertBefore(tile, this.self.parentNode === this.root ? this.self : null); // yours stays last
      video(tile).onresize = () => this.paint(link);
    }
    this.setStream(link);
    this.paint(link);
    this.layout();
  }

  /** @param {PeerLink} link */
  remove(link) {
    const tile = this.tiles.get(link);
    if (!tile) return;
    video(tile).srcObject = null;
    tile.remove();
    this.tiles.delete(link);
    if (this.focused === link.peerId) this.focused = null;
    this.layout();
  }

  clear() {
    for (const link of [...this.tiles.keys()]) this.remove(link);
    this.focused = null;
    this.speaker = null;
  }

  /** Show the grid (a group call) or not (1:1: the big remote picture plays instead). @param {boolean} on */
  show(on) {
    this.showing = on;
    this.root.hidden = !on;
    if (on && this.self.parentNode !== this.root) this.root.append(this.self);
    if (!on && this.self.parentNode === this.root)
      this.selfHome.insertBefore(this.self, this.root.nextSibling);
    this.layout();
    for (const link of this.tiles.keys()) this.setStream(link);
    if (!on) this.focus(null);
  }

  /** Only a visible tile plays, so nobody is heard twice. @param {PeerLink} link */
  setStream(link) {
    const tile = this.tiles.get(link);
    if (!tile) return;
    const el = video(tile);
    const stream = this.showing ? link.remoteStream : null;
    if (el.srcObject !== stream) el.srcObject = stream;
    if (stream && stream.getTracks().length) {
      el.play().catch((error) => {
        if (error.name !== 'NotAllowedError') return;
        el.muted = true;
        el.play().catch(() => {});
        this.onSoundBlocked();
      });
    }
  }

  unmuteAll() {
    for (const tile of this.tiles.values()) video(tile).muted = false;
  }

  /** @param {PeerLink} link */
  paint(link) {
    const tile = this.tiles.get(link);
    if (!tile) return;
    const name = /** @type {HTMLElement} */ (tile.querySelector('.tile-name'));
    paintName(name, link.peerName, link.peerId);
    const check = checkOf(link);
    tile.dataset.verification =
      check?.state === 'mismatch' && check.released ? 'released' : check?.state || '';
    if (check?.state === 'mismatch') {
      const mark = document.createElement('span');
      mark.className = 'tile-mismatch';
      mark.dataset.testid = 'tile-mismatch';
      mark.title = `Not the device you verified as ${check.expected[0]?.name || link.peerName}`;
      mark.textContent = '⚠';
      const words = document.createElement('span');
      words.className = 'visually-hidden';
      words.textContent = ` (${mark.title})`;
      mark.append(words);
      name.append(' ', mark);
    }
    // The name opens this member's security code (verify.js listens on the grid); a group
    // call has no single "Verify" in the header.
    const who = /** @type {HTMLButtonElement} */ (tile.querySelector('.tile-who'));
    who.disabled = !check;
    /** @type {HTMLElement} */ (tile.querySelector('.tile-verify-hint')).hidden =
      check?.state !== 'unverified';
    if (!check) who.removeAttribute('aria-label');
    else if (check.state === 'unverified') who.setAttribute('aria-label', `Verify ${link.peerName}`);
    else if (check.state === 'verified')
      who.setAttribute('aria-label', `${link.peerName}, verified: show the security code`);
    else
      who.setAttribute(
        'aria-label',
        `${link.peerName}: not the device you verified as ${check.expected[0]?.name || link.peerName}. ` +
          'Show the security code',
      );
    who.title = check ? `Security code with ${link.peerName}` : '';
    paintAvatar(/** @type {HTMLElement} */ (tile.querySelector('.avatar')), link.peerName, link.peerId);
    const connected = link.is('connected');
    const showing = connected && link.remoteMedia.video && video(tile).videoWidth > 0;
    /** @type {HTMLElement} */ (tile.querySelector('.tile-cover')).hidden = showing;
    const words = STATE_WORDS[/** @type {keyof STATE_WORDS} */ (link.state)] || '';
    /** @type {HTMLElement} */ (tile.querySelector('.tile-state')).textContent = words;
    /** @type {HTMLElement} */ (tile.querySelector('[data-testid="tile-mic-off"]')).hidden =
      !connected || link.remoteMedia.audio;
    /** @type {HTMLElement} */ (tile.querySelector('[data-testid="tile-camera-off"]')).hidden =
      !connected || link.remoteMedia.video;
    tile.dataset.state = link.state;
    tile.classList.toggle('speaking', this.speaker === link.peerId);
    const button = /** @type {HTMLElement} */ (tile.querySelector('.tile-focus'));
    const large = this.focused === link.peerId;
    button.setAttribute('aria-pressed', String(large));
    button.setAttribute('aria-label', large ? 'Back to everyone' : `Show ${link.peerName} large`);
    button.title = large ? 'Back to everyone' : `Show ${link.peerName} large`;
  }

  paintAll() {
    for (const link of this.tiles.keys()) this.paint(link);
  }

  /** @param {string | null} peerId */
  setSpeaker(peerId) {
    this.speaker = peerId;
    for (const [link, tile] of this.tiles) tile.classList.toggle('speaking', link.peerId === peerId);
  }

  /** One member large (tap again: back to the grid). @param {string | null} peerId */
  focus(peerId) {
    this.focused = peerId && [...this.tiles.keys()].some((link) => link.peerId === peerId) ? peerId : null;
    if (this.focused) this.root.dataset.focused = this.focused;
    else delete this.root.dataset.focused;
    for (const [link, tile] of this.tiles) tile.classList.toggle('focused', link.peerId === this.focused);
    this.paintAll();
  }

  /** Every tile the same size, as large as they all fit (balancedGrid), yours included. */
  layout() {
    this.root.dataset.tiles = String(this.tiles.size);
    if (this.root.hidden) return;
    const style = getComputedStyle(this.root);
    const gap = parseFloat(style.columnGap) || 0;
    const count = this.tiles.size + (this.self.parentNode === this.root ? 1 : 0);
    const { cols, tileWidth, tileHeight } = balancedGrid(
      count,
      this.root.clientWidth,
      this.root.clientHeight,
      gap,
    );
    this.root.style.setProperty('--tile-w', `${tileWidth}px`);
    this.root.style.setProperty('--tile-h', `${tileHeight}px`);
    this.root.dataset.cols = String(cols);
  }
}

/** @param {HTMLElement} tile */
function video(tile) {
  return /** @type {HTMLVideoElement} */ (tile.querySelector('video'));
}
