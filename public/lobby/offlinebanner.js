// The "no connection to the server" banner with "Retry now", shown while the signalling
// link is down (after a moment, so a quick server restart does not flash it).

import { $ } from '../core/dom.js';

const SHOW_AFTER_MS = 1000;
const TEXT = {
  reconnecting: 'Lost the connection to the server. Trying again…',
  offline: 'This device is offline. Calls work again once it is back on the network.',
};

/** @param {import('../core/signalling.js').Signalling} signalling */
export function watchLink(signalling) {
  const banner = $('link-banner');
  let timer = 0;
  $('retry-now').onclick = () => {
    $('link-banner-text').textContent = 'Trying again now…';
    signalling.reconnectNow();
  };
  signalling.on('state', (/** @type {import('../core/signalling.js').SocketState} */ state) => {
    clearTimeout(timer);
    if (state === 'online' || state === 'connecting') {
      banner.hidden = true;
      return;
    }
    const show = () => {
      banner.dataset.state = state;
      $('link-banner-text').textContent = TEXT[state];
      banner.hidden = false;
    };
    if (banner.hidden) timer = setTimeout(show, SHOW_AFTER_MS);
    else show();
  });
}
