// Leaving a live call by accident: Back asks first (the call has its own history entry),
// and closing or reloading the tab during a call gets the browser's "Leave site?" prompt.

import { $ } from '../core/dom.js';

const ENTRY = 'lanCall.call';

export class CallGuard {
  /**
   * @param {import('./calls.js').CallController} calls
   * @param {import('../core/signalling.js').Signalling} signalling (knows when the page reloads itself)
   */
  constructor(calls, signalling) {
    this.calls = calls;
    this.signalling = signalling;
    this.dialog = /** @type {HTMLDialogElement} */ ($('leave-call'));
    /** Our history entry is the current one. */
    this.pushed = false;
    this.ignorePop = false;
    calls.on('call', (call) => {
      if (!call.is('ringing')) return this.push();
      call.during('state', () => call.is('connecting') && this.push()); // accepted
    });
    calls.on('ended', ({ last }) => last && this.ended()); // one member leaving a group call is not the end
    addEventListener('popstate', () => this.popped());
    addEventListener('beforeunload', (event) => {
      if (!this.live || signalling.returning) return;
      event.preventDefault();
      event.returnValue = ''; // older browsers need it set
    });
    $('leave-call-stay').onclick = () => this.dialog.close();
    $('leave-call-end').onclick = () => {
      this.dialog.close();
      calls.hangup();
    };
  }

  /** A call you placed or accepted and have not ended (a ringing one can go with the page). */
  get live() {
    const call = this.calls.current;
    return Boolean(call?.active && !call.is('ringing'));
  }

  push() {
    if (this.pushed) return;
    history.pushState({ [ENTRY]: true }, '');
    this.pushed = true;
  }

  ended() {
    if (this.dialog.open) this.dialog.close();
    if (!this.pushed) return;
    this.pushed = false;
    // Take our entry off again, so Back from the lobby leaves the app in one press; not
    // while the page reloads itself for an update (it would race the reload).
    if (history.state?.[ENTRY] && !this.signalling.returning) {
      this.ignorePop = true;
      history.back();
    }
  }

  /** Back (or a swipe) during a call: stay on the call screen and ask. */
  popped() {
    if (this.ignorePop) {
      this.ignorePop = false;
      return;
    }
    if (!this.pushed) return;
    this.pushed = false;
    if (!this.live) return;
    this.push();
    const name = this.calls.current?.peerName || 'them';
    $('leave-call-title').textContent = `End the call with ${name}?`;
    if (!this.dialog.open) this.dialog.showModal();
  }
}
