// System notifications for calls that arrive while this tab is in the background.
// Permission is asked only after the person does something with calls (places or
// accepts one) or presses "Notify me of calls" — never on page load.

import { $ } from '../core/dom.js';

const ASKED_KEY = 'lanCall.notifyAsked';
const TAG = 'lan-call'; // one notification at a time: a missed call replaces the ring

export class CallNotifier {
  constructor() {
    /** @type {Notification | null} */ this.shown = null;
    this.offer = $('notify-offer');
    $('notify-enable').onclick = () => this.ask();
    $('notify-dismiss').onclick = () => {
      remember();
      this.paint();
    };
    // Back in the tab: the notification has done its job.
    document.addEventListener('visibilitychange', () => !document.hidden && this.close());
    this.paint();
  }

  get supported() {
    return typeof Notification === 'function' && isSecureContext;
  }

  /** After the person's first own call action, once per device. */
  askOnce() {
    if (!this.supported || Notification.permission !== 'default' || asked()) return;
    this.ask();
  }

  ask() {
    if (!this.supported) return;
    remember();
    Notification.requestPermission()
      .catch(() => 'denied')
      .then(() => this.paint());
    this.paint();
  }

  /** The "Notify me of calls" offer: only while the answer is still open. */
  paint() {
    this.offer.hidden = !this.supported || Notification.permission !== 'default' || asked();
    document.body.dataset.notifyOffer = String(!this.offer.hidden);
  }

  /** @param {import('./peerlink.js').PeerLink} call ringing */
  incoming(call) {
    this.show(`${call.peerName} is calling`, 'Open LAN Call to answer.', true);
    call.during('state', () => !call.is('ringing') && this.close());
  }

  /** @param {{name: string, reason: string}} missed */
  missed({ name, reason }) {
    this.show(
      `Missed call from ${name}`,
      reason === 'busy' ? 'They called while you were in a call.' : 'Open LAN Call to call back.',
      false,
    );
  }

  /** @param {string} title @param {string} body @param {boolean} ringing */
  show(title, body, ringing) {
    if (!document.hidden || !this.supported || Notification.permission !== 'granted') return;
    // One at a time: a notification of the same tag replaces the one before, wherever it
    // is shown (closing the worker's here could race the new one and close it instead).
    this.shown?.close();
    this.shown = null;
    const icon = document.querySelector('link[rel="icon"]')?.getAttribute('href') || undefined;
    // `renotify` (Chromium: ring again for the same tag) is not in TypeScript's NotificationOptions.
    const options = /** @type {NotificationOptions} */ ({
      body,
      tag: TAG,
      renotify: true,
      requireInteraction: ringing,
      icon,
    });
    try {
      const note = new Notification(title, options);
      note.onclick = () => {
        focus();
        note.close();
      };
      this.shown = note;
    } catch {
      // Android's Chrome and iPhone apps on the Home Screen show notifications only from
      // the service worker (its notificationclick brings this tab forward).
      this.worker()
        .then((registration) => registration?.showNotification(title, options))
        .catch(() => {});
    }
  }

  close() {
    this.shown?.close();
    this.shown = null;
    this.worker()
      .then((registration) => registration?.getNotifications({ tag: TAG }))
      .then((notes) => notes?.forEach((note) => note.close()))
      .catch(() => {});
  }

  /** The page's service worker registration, where there is one. */
  async worker() {
    return (await navigator.serviceWorker?.getRegistration()) ?? null;
  }
}

function asked() {
  try {
    return localStorage.getItem(ASKED_KEY) === '1';
  } catch {
    return true;
  }
}

function remember() {
  try {
    localStorage.setItem(ASKED_KEY, '1');
  } catch {
    // nowhere to remember it: the offer comes back next time, which is harmless
  }
}
