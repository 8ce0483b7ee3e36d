// The call screen: the peer's video large, yours small, status and timer, the controls
// and the settings sheet. Video boxes have fixed sizes: nothing moves when video starts.
// A group call shows a grid of tiles instead of the one large picture (public/calls/tiles.js).

import { formatDuration } from './calls.js';
import { listNames } from './grouplogic.js';
import { TileGrid } from './tiles.js';
import { $, clearNotices, setLabel } from '../core/dom.js';
import { cameraWords, paintAvatar, paintDevicePickers, paintName, paintToggles } from '../lobby/lobby.js';

/**
 * @typedef {import('./peerlink.js').PeerLink} Call
 * @typedef {import('./media.js').Media} Media
 */

const STATUS = {
  calling: 'Calling NAME…',
  alerting: 'Ringing NAME…', // calling, and their device rings (their `ringing` arrived)
  ringing: 'Ringing…',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  ended: 'Call ended',
};
const FIT_KEY = 'lanCall.fit'; // 'fill' or 'fit', once the person has chosen
const portrait = matchMedia('(orientation: portrait)');

export class CallView {
  /**
   * @param {Media} media @param {import('./chat.js').ChatPanel} chat
   * @param {import('./stats.js').StatsOverlay} stats @param {() => void} onHangup
   * @param {Record<string, () => unknown>} groupActions the group-call buttons (add people, call waiting)
   * @param {import('../verify/guard.js').Guard} guard whose checks the tiles show
   */
  constructor(media, chat, stats, onHangup, groupActions, guard) {
    this.media = media;
    this.chat = chat;
    this.stats = stats;
    this.root = $('call');
    this.remote = /** @type {HTMLVideoElement} */ ($('remote-video'));
    this.self = /** @type {HTMLVideoElement} */ ($('self-view'));
    /** @type {Call | null} */ this.call = null;
    this.ticker = 0;
    /** @type {WakeLockSentinel | null} */ this.wakeLock = null;
    /** 'fill', 'fit', or '' until the person chooses */
    this.fitChoice = '';
    try {
      this.fitChoice = localStorage.getItem(FIT_KEY) || '';
    } catch {
      /* storage disabled */
    }
    this.wakeRequested = false;
    this.remote.onresize = () => this.paint(); // the first frame, or a new size: no layout change
    this.grid = new TileGrid(guard, () => {
      $('unmute-remote').hidden = false;
    });
    /** @type {WeakMap<Call, AbortSignal>} the call each link's listeners were added for */
    this.following = new WeakMap();
    $('unmute-remote').onclick = () => {
      this.remote.muted = false;
      this.grid.unmuteAll();
      $('unmute-remote').hidden = true;
    };
    this.groupActions = groupActions;
    /** @type {Record<string, () => unknown>} */
    const actions = {
      mic: () => media.setMic(!media.micOn),
      camera: () => media.setCamera(!media.cameraOn),
      flip: () => media.switchCamera(),
      screen: () => media.shareScreen(),
      chat: () => chat.toggle(),
      'close-chat': () => chat.close(),
      more: () => this.toggleMore(),
      'close-more': () => this.toggleMore(false),
      stats: () => this.toggleStats(),
      fit: () => this.toggleFit(),
      hangup: onHangup,
      ...groupActions,
    };
    this.root.onclick = (event) => {
      const target = /** @type {HTMLElement} */ (event.target).closest('[data-action]');
      actions[/** @type {HTMLElement} */ (target)?.dataset.action || '']?.();
    };
    // Double-tap (or double-click) the picture: whole picture / fill the screen.
    this.remote.parentElement?.addEventListener('dblclick', (event) => {
      if (!(/** @type {Element} */ (event.target).closest('button, .pip')) && $('remote-cover').hidden)
        this.toggleFit();
    });
    portrait.addEventListener('change', () => this.paintFit());
    this.root.onkeydown = (event) => {
      if (event.key !== 'Escape') return;
      chat.close();
      this.toggleMore(false);
      groupActions['close-add-people']?.();
    };
    media.on('change', () => this.paintMedia());
    media.on('trackchange', () => this.showSelf());
  }

  /** @param {string} action */
  button(action) {
    return /** @type {HTMLElement} */ (this.root.querySelector(`[data-action="${action}"]`));
  }

  /** A link joins the call screen: the first opens it, more make it a group call. @param {Call} link */
  show(link) {
    if (!this.call) return this.open(link);
    this.grid.add(link);
    this.chat.attach(link);
    this.follow(link);
    if (link === this.call) this.setPrimary(link); // the same person, a fresh connection
    this.layout();
  }

  /** A link left the call screen; the last one closes it. @param {Call} link */
  remove(link) {
    if (!this.call) return;
    this.grid.remove(link);
    this.chat.remove(link);
    if (link === this.call) {
      const next = [...this.grid.tiles.keys()][0];
      if (!next) return this.close();
      this.setPrimary(next);
    }
    this.layout();
  }

  /** @param {Call} link */
  follow(link) {
    if (this.following.get(link) === link.scope.signal) return;
    this.following.set(link, link.scope.signal);
    link.during('state', () => {
      this.grid.paint(link);
      this.paint();
      this.paintHeld();
    });
    link.during('remotemedia', () => {
      this.grid.paint(link);
      this.paint();
    });
    link.during('remote-hold', () => this.paintHeld());
    link.during('track', () => {
      this.grid.setStream(link);
      if (link === this.call && !this.grid.showing) this.playRemote();
    });
  }

  /**
   * Someone in the call holds their connection with us until they confirm our device:
   * say so, or the call looks connected with no picture or sound and no reason (issue 19, 5).
   */
  paintHeld() {
    const chip = $('held-chip');
    const links = new Set([...(this.call ? [this.call] : []), ...this.grid.tiles.keys()]);
    const waiting = [...links].filter((link) => link.active && link.remoteHold).map((link) => link.peerName);
    chip.hidden = waiting.length === 0;
    const who = waiting.length === 1 ? `${waiting[0]} doesn’t` : 'they don’t';
    chip.textContent = waiting.length
      ? `Waiting for ${listNames(waiting)} to confirm your device: ${who} see or hear you yet, ` +
        'and your messages arrive if they do.'
      : '';
  }

  /** The person the 1:1 picture (and the connection stats) are about. @param {Call} link */
  setPrimary(link) {
    this.call = link;
    paintAvatar($('call-avatar'), link.peerName, link.peerId);
    this.layout();
  }

  /** One other person: their picture large, as always; more: the grid. */
  layout() {
    const call = this.call;
    if (!call) return;
    const group = this.grid.size > 1;
    this.grid.show(group);
    this.root.dataset.layout = group ? 'grid' : 'single';
    const stream = group ? null : call.remoteStream;
    if (this.remote.srcObject !== stream) {
      this.remote.srcObject = stream;
      if (stream?.getTracks().length) this.playRemote();
    }
    this.paint();
  }

  /** @param {string | null} peerId */
  setSpeaker(peerId) {
    this.grid.setSpeaker(peerId);
  }

  /** @param {Call} call */
  open(call) {
    this.call = call;
    clearNotices(); // the last call's ending or a lobby message: not about this call
    paintAvatar($('call-avatar'), call.peerName, call.peerId);
    this.remote.srcObject = call.remoteStream;
    this.remote.muted = false;
    if (call.remoteStream.getTracks().length) this.playRemote(); // tracks came while it rang
    this.showSelf();
    this.chat.attach(call);
    this.grid.add(call);
    this.follow(call);
    this.layout();
    $('lobby').hidden = true;
    document.body.dataset.screen = 'call';
    this.root.hidden = false;
    this.setPageInert(true);
    this.paintFit();
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.paintTimer(), 1000);
    this.paint();
    this.paintMedia();
    // The region, not a button, takes focus: screen readers announce it, Tab reaches the controls.
    if (!this.root.contains(document.activeElement)) this.root.focus({ preventScroll: true });
  }

  close() {
    $('held-chip').hidden = true;
    const peerId = this.call?.peerId || '';
    const active = document.activeElement;
    const hadFocus = !active || active === document.body || this.root.contains(active);
    this.call = null;
    this.grid.clear();
    this.grid.show(false);
    this.groupActions['close-add-people']?.();
    this.groupActions.closeWaiting?.();
    clearNotices();
    clearInterval(this.ticker);
    this.stats.hide();
    this.chat.detach();
    this.toggleMore(false);
    this.remote.srcObject = this.self.srcObject = null;
    $('unmute-remote').hidden = this.root.hidden = true;
    $('lobby').hidden = false;
    this.setPageInert(false);
    document.body.dataset.screen = 'lobby';
    // Back to the person just called (the list may still drop them this turn), else the list.
    if (hadFocus) queueMicrotask(() => this.returnFocus(peerId));
    this.wakeLock?.release().catch(() => {});
    this.wakeLock = null;
    this.wakeRequested = false;
  }

  /**
   * While the call screen is up, Tab and screen readers stay in it (and in what is marked
   * `data-over-call`: file transfers, usable during a call). @param {boolean} inert
   */
  setPageInert(inert) {
    for (const el of document.body.children) {
      const over = el instanceof HTMLElement && el.dataset.overCall !== undefined;
      if (el !== this.root && el.id !== 'notices' && !over) /** @type {HTMLElement} */ (el).inert = inert;
    }
  }

  /** @param {string} peerId */
  returnFocus(peerId) {
    const person = /** @type {HTMLElement | null} */ (
      document.querySelector(`#people [data-peer-id="${CSS.escape(peerId)}"]`)
    );
    (person || $('people-title')).focus();
  }

  /** Whole picture (letterboxed) or filling the screen (cropped); phones held upright fill. */
  paintFit() {
    const fill = this.fitChoice ? this.fitChoice === 'fill' : portrait.matches;
    this.root.dataset.fit = fill ? 'fill' : 'fit';
    const button = this.button('fit');
    button.setAttribute('aria-pressed', String(fill));
    setLabel(button, fill ? 'Show the whole picture' : 'Fill the screen');
  }

  toggleFit() {
    this.fitChoice = this.root.dataset.fit === 'fill' ? 'fit' : 'fill';
    try {
      localStorage.setItem(FIT_KEY, this.fitChoice);
    } catch {
      /* storage disabled: lasts this visit */
    }
    this.paintFit();
  }

  /** @param {boolean} [show] */
  toggleMore(show = $('more').hidden) {
    const sheet = $('more');
    if (show) this.chat.close();
    else if (sheet.contains(document.activeElement)) this.button('more').focus(); // focus stays on the way
    sheet.hidden = !show;
    this.button('more').setAttribute('aria-expanded', String(show));
    if (show) sheet.querySelector('select')?.focus();
  }

  toggleStats() {
    if (this.stats.visible || !this.call) this.stats.hide();
    else if (this.call.pc) this.stats.show(this.call.pc);
    const button = this.button('stats');
    button.setAttribute('aria-pressed', String(this.stats.visible));
    button.textContent = `${this.stats.visible ? 'Hide' : 'Show'} connection stats`;
  }

  /** Your own picture: the camera (mirrored), or the screen while sharing. */
  showSelf() {
    const track = this.media.videoTrack;
    if (track !== /** @type {MediaStream | null} */ (this.self.srcObject)?.getVideoTracks()[0]) {
      this.self.srcObject = track ? new MediaStream([track]) : null;
    }
    this.self.classList.toggle('mirror', !this.media.screenTrack);
  }

  /** Autoplay with sound needs a user gesture; calls start with one, a reloaded page may not. */
  playRemote() {
    this.remote.play().catch((error) => {
      if (error.name !== 'NotAllowedError') return;
      this.remote.muted = true;
      this.remote.play().catch(() => {});
      $('unmute-remote').hidden = false;
    });
  }

  paint() {
    const call = this.call;
    if (!call) return;
    if (this.grid.size > 1) return this.paintGroup();
    const connected = call.is('connected');
    const status = $('call-status');
    const stage = call.is('calling') && call.alerting ? 'alerting' : call.state;
    status.textContent = (STATUS[/** @type {keyof STATUS} */ (stage)] || '').replace('NAME', call.peerName);
    status.className = connected ? 'visually-hidden' : '';
    paintName($('call-name'), call.peerName, call.peerId);
    this.root.dataset.state = call.state;
    const showing = this.remote.videoWidth > 0 && call.remoteMedia.video;
    $('remote-cover').hidden = showing;
    this.button('fit').hidden = !showing;
    $('remote-muted').hidden = !connected || call.remoteMedia.audio;
    setLabel(this.button('hangup'), call.is('calling') ? 'Cancel call' : 'Hang up');
    if (connected && !this.wakeRequested) this.keepScreenOn();
    this.paintTimer();
  }

  /** A group call: everyone's names above the grid, "Connected" once anyone is. */
  paintGroup() {
    const links = [...this.grid.tiles.keys()];
    const connected = links.some((link) => link.is('connected'));
    const status = $('call-status');
    status.textContent = connected ? STATUS.connected : STATUS.connecting;
    status.className = connected ? 'visually-hidden' : '';
    const names = $('call-name');
    names.replaceChildren();
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = listNames(links.map((link) => link.peerName));
    names.append(text);
    names.classList.add('label');
    names.title = text.textContent;
    this.root.dataset.state = connected ? 'connected' : 'connecting';
    $('remote-cover').hidden = true;
    this.button('fit').hidden = true;
    $('remote-muted').hidden = true;
    setLabel(this.button('hangup'), 'Leave call');
    if (connected && !this.wakeRequested) this.keepScreenOn();
    this.paintTimer();
  }

  paintTimer() {
    const starts = [...this.grid.tiles.keys()]
      .filter((link) => link.is('connected'))
      .map((link) => link.connectedAt);
    const since = starts.length ? Math.min(...starts) : 0;
    $('call-timer').textContent = since ? formatDuration((Date.now() - since) / 1000) : '';
  }

  paintMedia() {
    const { media } = this;
    paintToggles(this.root, media);
    paintDevicePickers(media);
    this.button('flip').hidden = media.cameras.length < 2 || Boolean(media.screenTrack);
    const screen = this.button('screen');
    screen.hidden = !media.canShareScreen;
    screen.setAttribute('aria-pressed', String(Boolean(media.screenTrack)));
    setLabel(screen, media.screenTrack ? 'Stop sharing your screen' : 'Share your screen');
    const showing = media.screenTrack || (media.cameraOn && media.camera?.readyState === 'live');
    $('pip').dataset.off = String(!showing);
    /** @type {HTMLElement} */ ($('pip').lastElementChild).textContent = cameraWords(media);
  }

  /** Keep a phone's screen on during the call; unsupported or refused: it may dim, no harm. */
  async keepScreenOn() {
    this.wakeRequested = true;
    const lock = await navigator.wakeLock?.request('screen').catch(() => null);
    if (this.call) this.wakeLock = lock || null;
    else lock?.release(); // the call ended while we waited
  }
}
