// The server link as the call screen shows it. In a call, the page header (its
// "Reconnecting…") and the lobby's banner are behind the call screen, so once the
// signalling socket has been down for SHOW_AFTER_MS a small chip on the call screen says
// so, and what still works: media goes browser to browser, so a call under way goes on,
// while joining, invitations and renegotiation wait for the server. Shorter blips (a
// server restart) show nothing. It follows the signalling `state` event, nothing else.
// No imports: the wording is tested in Node (tests/js/serverchip.test.mjs).

/** @typedef {import('../core/signalling.js').SocketState} SocketState */

export const SHOW_AFTER_MS = 2000;
export const LONG_AFTER_MS = 30000;
const REPAINT_MS = 1000; // while down: the long text, and a call that connects meanwhile

/**
 * What the chip says, '' for no chip.
 * @param {SocketState} state the signalling socket
 * @param {number} downMs how long it has been down
 * @param {boolean} live someone in the call is connected (their media needs no server)
 */
export function serverChipText(state, downMs, live) {
  if (state === 'online' || state === 'connecting' || downMs < SHOW_AFTER_MS) return '';
  if (state === 'offline') return 'This device is offline. The call resumes if the network is back soon.';
  if (!live) return 'Reconnecting to the server. This call can’t connect until it’s back.';
  if (downMs < LONG_AFTER_MS) return 'Reconnecting to the server… Your call continues.';
  return 'The server is still out of reach. Your call continues; nobody new can join until it’s back.';
}

export class ServerChip {
  /**
   * @param {import('../core/signalling.js').Signalling} signalling
   * @param {() => boolean} callLive whether someone in the call is connected
   */
  constructor(signalling, callLive) {
    this.signalling = signalling;
    this.callLive = callLive;
    // Inside an always-rendered role=status region: showing the chip is what gets announced.
    this.chip = /** @type {HTMLElement} */ (document.getElementById('server-link-chip'));
    /** performance.now() when the socket went down; 0 while it is up */
    this.downSince = 0;
    this.showTimer = 0;
    this.repaintTimer = 0;
    signalling.on('state', (/** @type {SocketState} */ state) => this.changed(state));
  }

  /** @param {SocketState} state */
  changed(state) {
    const down = state === 'reconnecting' || state === 'offline';
    if (down && !this.downSince) {
      this.downSince = performance.now();
      this.showTimer = setTimeout(() => {
        this.repaintTimer = setInterval(() => this.paint(), REPAINT_MS);
        this.paint();
      }, SHOW_AFTER_MS);
    } else if (!down) {
      this.downSince = 0;
      clearTimeout(this.showTimer);
      clearInterval(this.repaintTimer);
    }
    this.paint();
  }

  paint() {
    const state = this.signalling.state;
    const downMs = this.downSince ? performance.now() - this.downSince : 0;
    const text = serverChipText(state, downMs, this.callLive());
    if (this.chip.textContent !== text) this.chip.textContent = text; // unchanged: not announced again
    this.chip.dataset.state = state;
    this.chip.hidden = !text;
  }
}
