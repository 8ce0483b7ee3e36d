// The warning for a held data link (docs/verification.md): someone shows up under a
// verified contact's name or id with another device, so messages and files to them are
// refused (public/data/datalinks.js) until the user decides. The conversation view and the
// file cards show it, with the call screen's words and the same two choices.

import { verifiedBadge } from './contacts.js';
import { checkOf, release } from './guard.js';
import { showNotice } from '../core/dom.js';

/** @typedef {import('../data/datalinks.js').DataLink} DataLink */

/**
 * The data link with this person if it is held and the user has not decided, else null.
 * @param {import('../data/datalinks.js').DataLinks} dataLinks @param {string} peerId
 */
export function undecidedLink(dataLinks, peerId) {
  const link = dataLinks.links.get(peerId);
  const check = link ? checkOf(link) : null;
  return link && link.held && check?.state === 'mismatch' && !check.released ? link : null;
}

/** @param {string} tag @param {string} className @param {string} [text] */
function el(tag, className, text = '') {
  const node = document.createElement(tag);
  node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** @param {number} when */
function day(when) {
  return new Date(when).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

/**
 * The warning, as the call screen words it, with "Not them" and "It's a new device".
 * "It's a new device" lets this connection through (unverified: verify again in a call);
 * "Not them" closes the link.
 * @param {DataLink} link
 * @param {{compact?: boolean, released?: () => void, notThem?: () => void}} [options] compact:
 *   a file card's shorter text; released: after "It's a new device" (the conversation
 *   retries its lines); notThem: before the link closes (the files stop)
 */
export function linkWarning(link, { compact = false, released, notThem: refused } = {}) {
  const check = checkOf(link);
  const expected = check?.expected[0];
  const name = expected?.name || link.peerName;
  const box = el('div', compact ? 'link-warning compact' : 'link-warning');
  box.setAttribute('role', 'alert');
  box.dataset.testid = 'link-warning';
  const title = el(compact ? 'p' : 'h3', 'link-warning-title', `This may not be ${name}`);
  const since = expected ? ` on ${day(expected.verifiedAt)}` : '';
  const text = compact
    ? el('p', 'small', `Not the device you verified as ${name}. Nothing is sent until you decide.`)
    : el(
        'p',
        'small',
        `The device messaging as ${link.peerName} is not the one you verified as ${name}${since}. ` +
          'Someone may be listening in, or they may have a new phone or cleared their browser. ' +
          'Your messages and files are not sent until you decide.',
      );
  const row = el('div', 'row');
  const notThem = el('button', 'pill danger', 'Not them');
  notThem.setAttribute('type', 'button');
  notThem.dataset.testid = 'link-warning-not-them';
  notThem.onclick = () => {
    refused?.();
    link.close('hangup');
    showNotice(`Disconnected: that was not ${name}’s verified device.`);
  };
  const newDevice = el('button', 'pill', 'It’s a new device');
  newDevice.setAttribute('type', 'button');
  newDevice.dataset.testid = 'link-warning-new-device';
  newDevice.onclick = async () => {
    await release(link);
    released?.();
    showNotice(
      `Messages and files to ${link.peerName} go through now. ` +
        'To verify this device, call them and compare the security code.',
    );
  };
  row.append(notThem, newDevice);
  box.append(title, text, row);
  return box;
}

/**
 * A person's name followed by the verified badge when they are a verified contact.
 * @param {HTMLElement} target @param {string} text @param {boolean} verified
 */
export function nameWithBadge(target, text, verified) {
  target.textContent = text;
  if (verified) target.append(' ', verifiedBadge());
}
