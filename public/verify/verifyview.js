// Verification's views (docs/verification.md): the code both ends show, "Mark as
// verified", the warning when a device is not the one verified for that person, and the
// lobby's list of verified contacts. The guard itself (what holds a connection, the code
// exchange, each connection's check) is public/verify/guard.js, built into every connection; this
// module only reads checks and passes on the user's decisions.

import {
  contactEvents,
  contactFor,
  contacts,
  forget,
  markVerified,
  shortFingerprint,
  storageProblem,
  verifiedBadge,
} from './contacts.js';
import { checkOf, release } from './guard.js';
import { daysLeft, identity, identityEvents, renewIdentity, RENEW_WARNING_DAYS } from './identity.js';
import { $, showNotice } from '../core/dom.js';

/**
 * @typedef {import('../calls/peerlink.js').PeerLink} Link
 * @typedef {import('./guard.js').LinkCheck} LinkCheck
 */

/** The address of a QR code (SVG) of a short text, made by this server. @param {string} text */
function qrUrl(text) {
  return `/qr/text.svg?text=${encodeURIComponent(text)}`;
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {string} [className] @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, className = '', text = '') {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** @param {number} when */
function day(when) {
  return new Date(when).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

/**
 * The call screen's part: a chip in the header (verified / verify / warning), the code
 * sheet with its QR code, and the warning when the device is not the one verified.
 */
export class Verification {
  /**
   * @param {import('../calls/calls.js').CallController} calls
   * @param {() => void} repaint re-render the views that show names (the list, the call)
   */
  constructor(calls, repaint) {
    this.calls = calls;
    this.repaint = repaint;
    /** @type {Link | null} the link the code sheet is about */
    this.link = null;
    /** @type {Link | null} the link the warning is about */
    this.warned = null;
    /** @type {HTMLElement | null} what opened the sheet: the focus goes back there */
    this.opener = null;
    this.renewing = false;
    /**
     * @type {{link: Link, video: HTMLVideoElement, controller: AbortController} | null} a scan in progress
     */
    this.scanning = null;
    /** @type {{link: Link, kind: 'good' | 'bad', text: string} | null} what the last scan found */
    this.scanNote = null;
    calls.on('call', (/** @type {Link} */ link) => {
      link.during('state', () => this.render());
      this.render();
    });
    calls.on('ended', () => this.render());
    calls.guard.on('change', () => this.render());
    contactEvents.on('change', () => {
      this.repaint();
      this.render();
      this.renderContacts();
    });
    identityEvents.on('change', () => this.renderContacts());
    this.build();
    this.renderContacts();
  }

  build() {
    const call = $('call');
    const chip = (this.chip = el('button', 'verify-chip'));
    chip.type = 'button';
    chip.dataset.testid = 'verify-chip';
    chip.onclick = () => this.openSheet();
    call.querySelector('.call-top')?.append(chip);

    const sheet = (this.sheet = el('div', 'sheet verify-sheet'));
    sheet.id = 'verify-sheet';
    sheet.setAttribute('role', 'dialog');
    sheet.setAttribute('aria-labelledby', 'verify-title');
    sheet.dataset.testid = 'verify-sheet';
    sheet.hidden = true;
    sheet.onkeydown = (event) => {
      if (event.key === 'Escape') this.closeSheet();
    };
    const head = el('header');
    const title = (this.sheetTitle = el('h2', '', 'Security code'));
    title.id = 'verify-title';
    const close = el('button', 'round small', '×');
    close.setAttribute('aria-label', 'Close');
    close.title = 'Close';
    close.onclick = () => this.closeSheet();
    head.append(title, close);
    this.sheetBody = el('div', 'verify-body');
    sheet.append(head, this.sheetBody);
    call.append(sheet);
    // A group call: each tile's name opens that member's code (tiles.js paints it).
    $('tiles').addEventListener('click', (event) => {
      const who = /** @type {HTMLElement} */ (event.target).closest('.tile-who');
      const peerId = /** @type {HTMLElement | null} */ (who?.closest('.tile') ?? null)?.dataset.peerId;
      const link = peerId ? this.calls.inCall.find((l) => l.peerId === peerId) : null;
      if (link) this.openSheet(false, link);
    });

    const warning = (this.warning = el('div', 'verify-warning'));
    warning.setAttribute('role', 'alertdialog');
    warning.setAttribute('aria-labelledby', 'verify-warning-title');
    warning.dataset.testid = 'verify-warning';
    warning.hidden = true;
    call.append(warning);

    const incoming = (this.incomingWarning = el('p', 'incoming-warning'));
    incoming.dataset.testid = 'incoming-warning';
    incoming.hidden = true;
    $('incoming').querySelector('.answer')?.before(incoming);

    const panel = (this.panel = el('section', 'card contacts'));
    panel.setAttribute('aria-labelledby', 'contacts-title');
    panel.dataset.testid = 'contacts-panel';
    $('lobby').append(panel);
  }

  /**
   * The link the call screen is about: in a group call, a member whose device is not the
   * verified one and not yet decided (the warning names them); else the first in the call.
   */
  shown() {
    const undecided = this.calls.inCall.find((link) => {
      const check = checkOf(link);
      return check?.state === 'mismatch' && !check.released && !link.is('ringing');
    });
    return undecided || this.calls.current;
  }

  render() {
    const link = this.shown();
    const check = link ? checkOf(link) : null;
    const chip = /** @type {HTMLElement} */ (this.chip);
    chip.hidden = !check;
    if (link && check) {
      chip.dataset.state = check.state === 'mismatch' && check.released ? 'released' : check.state;
      chip.replaceChildren();
      if (check.state === 'verified') chip.append(verifiedBadge(), ' Verified');
      else if (check.state === 'mismatch') chip.append('⚠ Not the verified device');
      else chip.append('Verify');
      chip.title = check.code ? `Security code: ${check.code}` : 'Security code';
    }
    // The warning, while the user has not decided.
    const warn = Boolean(link && check?.state === 'mismatch' && !check.released && !link.is('ringing'));
    const warning = /** @type {HTMLElement} */ (this.warning);
    if (warn && link && check && (warning.hidden || this.warned !== link)) this.paintWarning(link, check);
    // While the code sheet is open (the user chose "It's a new device") it is the one
    // thing on top: a repaint must not bring the warning back over its buttons.
    warning.hidden = !warn || this.sheet?.hidden === false;
    const ringing = this.calls.links
      ? [...this.calls.links.values()].find((l) => l.is('ringing') && !l.waiting)
      : null;
    const ringCheck = ringing ? checkOf(ringing) : null;
    const incoming = /** @type {HTMLElement} */ (this.incomingWarning);
    incoming.hidden = ringCheck?.state !== 'mismatch';
    if (ringing && ringCheck?.state === 'mismatch') {
      incoming.textContent =
        'Warning: this is not the device you verified as ' +
        `${ringCheck.expected[0]?.name || ringing.peerName}. ` +
        'If you answer, nothing is sent until you decide.';
    }
    if (!this.sheet?.hidden) {
      // The sheet is about the member it was opened for, until they leave; a member whose
      // device is not the verified one comes first (their warning shows).
      const present =
        this.link &&
        (this.link === link || this.calls.inCall.includes(this.link) || this.link === this.calls.current);
      const about = present ? this.link : null;
      const aboutCheck = about && checkOf(about);
      if (!about || !aboutCheck || (warn && link !== about)) this.closeSheet();
      else this.paintSheet(about, aboutCheck);
    }
  }

  /** @param {Link} link @param {LinkCheck} check */
  paintWarning(link, check) {
    this.warned = link;
    const warning = /** @type {HTMLElement} */ (this.warning);
    const name = check.expected[0]?.name || link.peerName;
    const title = el('h2', '', `This may not be ${name}`);
    title.id = 'verify-warning-title';
    const since = check.expected[0] ? ` on ${day(check.expected[0].verifiedAt)}` : '';
    const text = el(
      'p',
      '',
      `The device calling as ${link.peerName} is not the one you verified as ${name}${since}. ` +
        'Someone may be listening in, or they may have a new phone or cleared their browser. ' +
        'Your camera, microphone and messages are not sent until you decide.',
    );
    const row = el('div', 'row');
    const newDevice = el('button', 'pill', 'It’s a new device');
    newDevice.type = 'button';
    newDevice.dataset.testid = 'warning-new-device';
    newDevice.onclick = () => this.openSheet(true, link);
    const notThem = el('button', 'pill danger', 'Not them: hang up');
    notThem.type = 'button';
    notThem.dataset.testid = 'warning-not-them';
    notThem.onclick = () => {
      link.hangup('hangup');
      showNotice(`Hung up: that was not ${name}’s verified device.`);
    };
    row.append(notThem, newDevice);
    warning.replaceChildren(title, text, row);
  }

  /**
   * @param {boolean} [reverify] opened from the warning: verifying replaces the old device
   * @param {Link | null} [link] whose code (a group call's tile); else the header's link
   */
  openSheet(reverify = false, link = this.shown()) {
    const check = link && checkOf(link);
    if (!link || !check) return;
    const active = document.activeElement;
    if (active instanceof HTMLElement && !this.sheet?.contains(active)) this.opener = active;
    this.link = link;
    this.reverify = reverify;
    this.paintSheet(link, check);
    /** @type {HTMLElement} */ (this.sheet).hidden = false;
    /** @type {HTMLElement} */ (this.warning).hidden = true;
    this.sheet?.querySelector('button')?.focus();
  }

  closeSheet() {
    this.stopScan();
    this.scanNote = null;
    const sheet = /** @type {HTMLElement} */ (this.sheet);
    const hadFocus = sheet.contains(document.activeElement);
    sheet.hidden = true;
    this.reverify = false;
    this.render();
    // Back to what opened it (a tile's name, the header chip), if it is still there and
    // nothing else (the warning) took the focus meanwhile.
    const opener = this.opener;
    this.opener = null;
    const free = this.warning?.hidden !== false && !(/** @type {HTMLButtonElement} */ (opener)?.disabled);
    if (hadFocus && free && opener?.isConnected) opener.focus();
  }

  /** @param {Link} link @param {LinkCheck} check */
  paintSheet(link, check) {
    const body = /** @type {HTMLElement} */ (this.sheetBody);
    // A group call: the title says whose code this is (a 1:1 call has one person).
    const group = this.calls.inCall.length > 1;
    /** @type {HTMLElement} */ (this.sheetTitle).textContent = group
      ? `Security code: ${link.peerName}`
      : 'Security code';
    const scanning = this.scanning?.link === link ? this.scanning : null;
    if (scanning) {
      // While scanning, the camera is the sheet (a phone has room for nothing else).
      const aim = el('p', 'small', `Point the camera at the code on ${link.peerName}’s screen.`);
      const cancel = el('button', 'button secondary', 'Stop scanning');
      cancel.type = 'button';
      cancel.dataset.testid = 'scan-cancel';
      cancel.onclick = () => this.stopScan();
      body.replaceChildren(aim, scanning.video, cancel);
      return;
    }
    const code = el('p', 'verify-code');
    code.dataset.testid = 'verify-code';
    code.dataset.source = check.source;
    for (const word of check.words) code.append(el('span', '', word), ' ');
    if (check.failed) {
      code.classList.add('verify-failed');
      code.textContent =
        `No code for this connection: ${link.peerName}’s side did not keep to the code exchange ` +
        `(${check.failed}). ` +
        'Someone may be in between: hang up and call again.';
    } else if (!check.words.length)
      code.textContent = link.is('connected') ? 'Making the code…' : 'Connecting…';
    const how = el(
      'p',
      'small',
      `Read these words to ${link.peerName}, or scan the code on their screen: ` +
        'theirs shows the same five words on a safe connection. ' +
        'If anything differs, someone is in between.',
    );
    /** @type {HTMLElement[]} */
    const parts = [code];
    // What the last scan found, right under the words, where the eye is.
    if (this.scanNote && this.scanNote.link === link) {
      const note = el('p', `scan-note ${this.scanNote.kind}`, this.scanNote.text);
      note.setAttribute('role', this.scanNote.kind === 'bad' ? 'alert' : 'status');
      note.dataset.testid = 'scan-result';
      parts.push(note);
    }
    if (check.qr) {
      const qr = /** @type {HTMLImageElement} */ (el('img', 'verify-qr'));
      qr.src = qrUrl(check.qr);
      qr.width = qr.height = 176;
      qr.alt = `QR code of the security code ${check.code}`;
      qr.dataset.testid = 'verify-qr';
      const scan = el('button', 'button secondary', 'Scan their code');
      scan.type = 'button';
      scan.dataset.testid = 'scan-code';
      scan.onclick = () => this.scan(link);
      parts.push(qr, scan);
    }
    if (!check.failed) parts.push(how);
    const contact = contactFor(check.remote);
    if (check.failed) {
      // Nothing to compare, nothing to mark: the call's other controls (hang up) remain.
    } else if (contact) {
      const done = el('p', 'verify-done');
      done.append(verifiedBadge(), ` Verified as ${contact.name} on ${day(contact.verifiedAt)}.`);
      const undo = el('button', 'button secondary', 'Forget this verification');
      undo.type = 'button';
      undo.onclick = () => forget(contact.fingerprint);
      parts.push(done, undo);
    } else {
      const mark = el(
        'button',
        'button wide verify-mark',
        `The words match: mark ${link.peerName} as verified`,
      );
      mark.type = 'button';
      mark.dataset.testid = 'mark-verified';
      mark.disabled = !check.words.length;
      mark.onclick = () => this.markAsVerified(link, check);
      parts.push(mark);
      if (check.state === 'mismatch' && !check.released) {
        const go = el('button', 'button secondary', 'Continue this call without verifying');
        go.type = 'button';
        go.dataset.testid = 'continue-unverified';
        go.onclick = () => release(link).then(() => this.closeSheet());
        parts.push(go);
      }
    }
    const mine = identity();
    const foot = el(
      'p',
      'small fingerprints',
      `Their device: ${shortFingerprint(check.remote)}… · ` +
        `This device: ${shortFingerprint(mine?.fingerprint || check.local)}… · ` +
        `read from the ${check.source === 'transport' ? 'connected DTLS transport' : 'negotiated SDP'}`,
    );
    parts.push(foot);
    body.replaceChildren(...parts);
  }

  /** @param {Link} link @param {LinkCheck} check */
  async markAsVerified(link, check) {
    const replaces = check.state === 'mismatch' ? check.expected.map((c) => c.fingerprint) : [];
    await markVerified(link.peerName, check.remote, replaces);
    // the tiles repaint with the new state
    if (link.connection) await this.calls.guard.verified(link.connection);
    showNotice(`${link.peerName} is verified on this device.`);
    this.closeSheet();
  }

  /**
   * Scan the QR code on their screen: the same code marks them verified, another one says
   * someone is in between (the whole 256-bit digest is compared, not only the words).
   * @param {Link} link
   */
  async scan(link) {
    this.stopScan();
    const video = /** @type {HTMLVideoElement} */ (el('video', 'verify-scan'));
    video.dataset.testid = 'scan-video';
    video.setAttribute('aria-label', `Camera: point it at the code on ${link.peerName}’s screen`);
    const scanning = (this.scanning = { link, video, controller: new AbortController() });
    this.scanNote = null;
    this.render();
    /** @type {HTMLElement | null | undefined} */ (
      this.sheet?.querySelector('[data-testid=scan-cancel]')
    )?.focus();
    /** @type {{kind: 'good' | 'bad', text: string} | null} */
    let note = null;
    try {
      const { scanQr, compareScanned } = await import('./qrscan.js');
      const text = await scanQr(video, scanning.controller.signal);
      const check = checkOf(link);
      const verdict = check?.qr ? compareScanned(text, check.qr) : 'differs';
      if (verdict === 'match' && check) {
        this.scanning = null;
        await this.markAsVerified(link, check);
        return;
      }
      note =
        verdict === 'not-a-code'
          ? {
              kind: 'bad',
              text: 'That QR code is not a security code. Scan the one under the five words on their screen.',
            }
          : {
              kind: 'bad',
              text:
                'The codes differ: the device in this call is not the one showing that code. ' +
                `Someone may be in between; don’t mark ${link.peerName} as verified.`,
            };
    } catch (error) {
      if (/** @type {Error} */ (error)?.name !== 'AbortError') {
        note = {
          kind: 'bad',
          text: /** @type {Error} */ (error)?.message || 'The scan failed. Compare the five words instead.',
        };
      }
    } finally {
      if (this.scanning === scanning) this.scanning = null;
    }
    this.scanNote = note && { link, ...note };
    this.render();
    this.sheet?.querySelector('.scan-note')?.scrollIntoView({ block: 'nearest' });
    /** @type {HTMLElement | null | undefined} */ (
      this.sheet?.querySelector('[data-testid=scan-code]')
    )?.focus({ preventScroll: true });
  }

  stopScan() {
    const scanning = this.scanning;
    this.scanning = null;
    scanning?.controller.abort();
    if (scanning && this.sheet?.hidden === false) this.render();
  }

  /** The lobby's card: this device's identity and the verified contacts, each removable. */
  renderContacts() {
    const panel = /** @type {HTMLElement} */ (this.panel);
    const title = el('h2', '', 'Verified contacts');
    title.id = 'contacts-title';
    /** @type {HTMLElement[]} */
    const parts = [title];
    const mine = identity();
    if (mine) {
      const days = daysLeft(mine);
      const line = el(
        'p',
        'small identity',
        `This device: ${shortFingerprint(mine.fingerprint)}… · valid until ${day(mine.expires)}`,
      );
      line.dataset.testid = 'identity-line';
      parts.push(line);
      if (mine.problem) {
        const problem = el('p', 'identity-problem', mine.problem);
        problem.dataset.testid = 'identity-problem';
        parts.push(problem);
      }
      if (days < RENEW_WARNING_DAYS) {
        const expiring = el(
          'p',
          'identity-problem',
          `This device’s identity expires in ${Math.max(days, 0)} days. ` +
            'Renew it now; people who verified you will need to verify you again.',
        );
        expiring.dataset.testid = 'identity-expiring';
        const renew = el('button', 'button secondary', 'Renew now');
        renew.type = 'button';
        renew.disabled = this.renewing;
        renew.onclick = async () => {
          this.renewing = true;
          await renewIdentity().finally(() => {
            this.renewing = false;
          });
        };
        parts.push(expiring, renew);
      }
    }
    if (storageProblem) parts.push(el('p', 'identity-problem', storageProblem));
    const list = el('ul', 'contact-list');
    list.dataset.testid = 'contact-list';
    for (const contact of contacts()) {
      const item = el('li', 'contact');
      item.dataset.testid = 'contact';
      const who = el('span', 'who');
      who.append(el('span', 'name', contact.name), verifiedBadge());
      const when = el(
        'span',
        'small',
        `${shortFingerprint(contact.fingerprint)}… · ${day(contact.verifiedAt)}`,
      );
      who.append(when);
      const remove = el('button', 'button secondary', 'Remove');
      remove.type = 'button';
      remove.dataset.testid = 'contact-remove';
      remove.setAttribute('aria-label', `Remove ${contact.name} from verified contacts`);
      remove.onclick = () => forget(contact.fingerprint);
      item.append(who, remove);
      list.append(item);
    }
    const empty = el(
      'p',
      'small',
      'Nobody yet. In a call, tap “Verify” and compare the five words with the other person; ' +
        'they are kept on this device only.',
    );
    empty.hidden = list.children.length > 0;
    parts.push(list, empty);
    panel.replaceChildren(...parts);
  }
}
