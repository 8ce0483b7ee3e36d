// The screens of file transfers (public/data/files.js): "Send files" on every person (a file
// picker that takes many files, and offers the camera and gallery on phones), drag and
// drop onto a person, "Send files" in a call's chat, a tray of transfers with progress,
// speed and time left, Accept / Decline / Cancel / Save, and the person chooser for
// files shared into the app from the system share sheet. Names are always text.

import { formatBytes, formatEta } from './transfer.js';
import { saveFile } from './filestore.js';
import { contactEvents, isVerified } from '../verify/contacts.js';
import { linkWarning, nameWithBadge, undecidedLink } from '../verify/holdwarning.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {string} tag @param {string} [className] @param {string} [text] */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {string} type */
function kindOf(type) {
  return type ? type : 'unknown type';
}

export class TransfersView {
  /**
   * @param {import('./files.js').FileTransfers} files
   * @param {{people: Map<string, {id: string, name: string, kind?: string}>,
   *          on?: (type: string, listener: () => void) => void}} roster
   * @param {() => string[]} callPeers who the current call is with (for its chat's button)
   */
  constructor(files, roster, callPeers) {
    this.files = files;
    this.roster = roster;
    this.callPeers = callPeers;
    this.tray = $('transfers');
    this.list = $('transfer-list');
    this.toggle = $('transfers-toggle');
    this.toggle.onclick = () => this.fold(!this.list.hidden);
    this.picker = /** @type {HTMLInputElement} */ ($('file-picker'));
    /** @type {Map<string, HTMLElement>} */
    this.items = new Map();
    /** Who the file picker is choosing for. */
    this.pickingFor = '';
    /** @type {File[] | null} files waiting for the person chooser */
    this.pending = null;
    /** @type {string[] | undefined} whom the chooser offers (undefined: everyone) */
    this.among = undefined;
    /** @type {Map<string, string>} the state each item was last painted in */
    this.painted = new Map();
    /** @type {Set<import('./files.js').Entry>} progress not painted yet */
    this.dirty = new Set();
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    files.on('added', (entry) => this.paint(entry, true));
    // A state change is painted at once; progress (every chunk) at most four times a second.
    files.on('changed', (entry) => {
      if (this.painted.get(entry.id) !== entry.transfer.state) return this.paint(entry, false);
      this.dirty.add(entry);
      this.timer ??= setTimeout(() => {
        this.timer = null;
        for (const dirty of this.dirty) if (this.items.has(dirty.id)) this.paint(dirty, false);
        this.dirty.clear();
      }, 250);
    });
    files.on('removed', (entry) => this.remove(entry.id));
    // The verified badge beside the person, and the warning while their data link is held.
    const repaintAll = () => {
      for (const entry of files.entries.values()) if (this.items.has(entry.id)) this.paint(entry, false);
    };
    contactEvents.on('change', repaintAll);
    files.dataLinks.guard.on('change', repaintAll);
    files.dataLinks.on('ended', repaintAll);
    this.picker.addEventListener('change', () => {
      const chosen = [...(this.picker.files || [])];
      this.picker.value = '';
      if (this.pickingFor && chosen.length) files.send(this.pickingFor, chosen);
    });
    this.wirePeople();
    this.wireChat();
    this.wirePersonChooser();
    // People come and go while the chooser is open (files shared in before anyone is listed).
    for (const change of ['added', 'removed']) roster.on?.(change, () => this.repaintChooser());
  }

  repaintChooser() {
    const dialog = /** @type {HTMLDialogElement} */ ($('pick-person'));
    if (dialog.open) this.askWhom(this.pending, this.among);
  }

  /** "Send files" and drag and drop on every person in the list. */
  wirePeople() {
    const people = $('people');
    people.addEventListener('click', (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest('[data-action="send-files"]');
      const peerId = button && this.peerOf(button);
      if (peerId) this.choose(peerId);
    });
    people.addEventListener('dragover', (event) => {
      const item = this.itemOf(event.target);
      if (!item || !event.dataTransfer?.types.includes('Files')) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
      item.classList.add('drop-target');
    });
    people.addEventListener('dragleave', (event) =>
      this.itemOf(event.target)?.classList.remove('drop-target'),
    );
    people.addEventListener('drop', (event) => {
      const item = this.itemOf(event.target);
      const peerId = item && this.peerOf(item);
      if (!peerId || !event.dataTransfer?.files.length) return;
      event.preventDefault();
      item.classList.remove('drop-target');
      this.files.send(peerId, [...event.dataTransfer.files]);
    });
  }

  /** The "Send files" button of a call's chat: to the person in the call (or a choice). */
  wireChat() {
    $('chat-send-files')?.addEventListener('click', () => {
      const peers = this.callPeers();
      if (peers.length === 1) this.choose(peers[0]);
      else if (peers.length > 1) this.askWhom(null, peers);
    });
  }

  /** @param {EventTarget | null} target */
  itemOf(target) {
    return /** @type {HTMLElement | null} */ (
      target instanceof Element ? target.closest('#people > li') : null
    );
  }

  /** @param {Element} node */
  peerOf(node) {
    return (
      /** @type {HTMLElement | null} */ (node.closest('li')?.querySelector('[data-peer-id]'))?.dataset
        .peerId || ''
    );
  }

  /** Open the file picker for this person. @param {string} peerId */
  choose(peerId) {
    this.pickingFor = peerId;
    this.picker.click();
  }

  // --- the person chooser (shared files, group calls) ----------------------------------

  wirePersonChooser() {
    const dialog = /** @type {HTMLDialogElement} */ ($('pick-person'));
    $('pick-person-cancel').addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => (this.pending = null));
    $('pick-person-list').addEventListener('click', (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest('button[data-peer-id]');
      if (!button) return;
      const peerId = /** @type {HTMLElement} */ (button).dataset.peerId || '';
      const files = this.pending;
      dialog.close();
      if (files) this.files.send(peerId, files);
      else this.choose(peerId);
    });
  }

  /**
   * Ask whom to send to: files shared into the app, or a call with several people.
   * @param {File[] | null} files null: pick the files after the person
   * @param {string[]} [among] only these people (default: everyone listed)
   */
  askWhom(files, among) {
    const dialog = /** @type {HTMLDialogElement} */ ($('pick-person'));
    const list = $('pick-person-list');
    list.replaceChildren();
    this.among = among;
    const people = [...this.roster.people.values()].filter(
      (p) => p.kind !== 'bot' && (!among || among.includes(p.id)),
    );
    for (const person of people) {
      const li = el('li');
      const button = el('button', 'person pick', person.name);
      button.setAttribute('type', 'button');
      button.dataset.peerId = person.id;
      button.dataset.testid = 'pick-person-option';
      li.append(button);
      list.append(li);
    }
    $('pick-person-files').textContent = files
      ? files.length === 1
        ? `${files[0].name} (${formatBytes(files[0].size)})`
        : `${files.length} files (${formatBytes(files.reduce((n, f) => n + f.size, 0))})`
      : '';
    $('pick-person-empty').hidden = people.length > 0;
    this.pending = files;
    if (!dialog.open) dialog.showModal();
  }

  // --- the tray ---------------------------------------------------------------------------

  /** @param {import('./files.js').Entry} entry @param {boolean} added */
  paint(entry, added) {
    let item = this.items.get(entry.id);
    if (!item) {
      item = this.build(entry);
      this.items.set(entry.id, item);
      this.list.prepend(item);
    }
    this.tray.hidden = false;
    const { transfer } = entry;
    const { offer } = transfer;
    const mine = entry.direction === 'out';
    item.dataset.state = transfer.state;
    this.painted.set(entry.id, transfer.state);
    nameWithBadge(
      /** @type {HTMLElement} */ (item.querySelector('.transfer-who')),
      mine ? `To ${entry.peerName}` : `From ${entry.peerName}`,
      isVerified(entry.peerId),
    );
    const held = transfer.finished ? null : undecidedLink(this.files.dataLinks, entry.peerId);
    const slot = /** @type {HTMLElement} */ (item.querySelector('.transfer-warning'));
    slot.hidden = !held;
    if (!held) slot.replaceChildren();
    else if (!slot.firstChild)
      slot.replaceChildren(linkWarning(held, { compact: true, notThem: () => this.stopAll(entry.peerId) }));
    const bar = /** @type {HTMLProgressElement} */ (item.querySelector('progress'));
    bar.max = Math.max(1, offer.size);
    const kept = transfer.state === 'offered' && entry.continues ? entry.continues.receiver.written : 0;
    bar.value = transfer.state === 'done' ? bar.max : Math.max(transfer.bytes, kept);
    /** @type {HTMLElement} */ (item.querySelector('.transfer-status')).textContent = this.status(entry);
    const show = (/** @type {string} */ action, /** @type {boolean} */ on) => {
      /** @type {HTMLElement} */ (item.querySelector(`[data-action="${action}"]`)).hidden = !on;
    };
    show('accept', !mine && transfer.state === 'offered' && !held); // files wait for the choice above
    show('decline', !mine && transfer.state === 'offered');
    show('cancel', !transfer.finished && !(!mine && transfer.state === 'offered'));
    show('save', !mine && transfer.state === 'done');
    show('dismiss', transfer.finished);
    if (added && !mine) {
      $('transfer-announce').textContent =
        `${entry.peerName} wants to send you ${offer.name} (${formatBytes(offer.size)}).`;
      this.fold(false); // a file waits for Accept: show it
    }
    this.count();
  }

  /** Fold the list away (the header stays) or show it. @param {boolean} folded */
  fold(folded) {
    this.list.hidden = folded;
    this.tray.dataset.folded = String(folded);
    this.toggle.setAttribute('aria-expanded', String(!folded));
    const words = folded ? 'Show the files' : 'Hide the files';
    this.toggle.setAttribute('aria-label', words);
    this.toggle.title = words;
  }

  /** "3 files · 1 waiting for you · 2 sending": what the folded tray still tells. */
  count() {
    const entries = [...this.items.keys()]
      .map((id) => this.files.entries.get(id))
      .filter((e) => e !== undefined);
    const waiting = entries.filter((e) => e.direction === 'in' && e.transfer.state === 'offered').length;
    const moving = entries.filter((e) => !e.transfer.finished && e.transfer.state !== 'offered').length;
    const parts = [`${entries.length} ${entries.length === 1 ? 'file' : 'files'}`];
    if (waiting) parts.push(`${waiting} waiting for you`);
    if (moving) parts.push(`${moving} on the way`);
    $('transfers-count').textContent = parts.join(' · ');
  }

  /** @param {import('./files.js').Entry} entry */
  status(entry) {
    const { transfer } = entry;
    const size = transfer.offer.size;
    const mine = entry.direction === 'out';
    switch (transfer.state) {
      case 'offering':
        return `Waiting for ${entry.peerName} to accept…`;
      case 'offered':
        return entry.continues
          ? `Sent again: it continues from the ${formatBytes(entry.continues.receiver.written)} ` +
              'already received.'
          : 'Wants to send you this file.';
      case 'verifying':
        // Every byte is here; a slow disk may still be writing them: that is progress too.
        if (!mine && transfer.bytes >= size) return 'Checking the file…';
        if (transfer.bytes >= size) return `Sent; ${entry.peerName} is checking it…`;
      // falls through: still being written on their side
      case 'sending':
      case 'receiving': {
        const { rate } = transfer.speed;
        const parts = [`${formatBytes(transfer.bytes)} of ${formatBytes(size)}`];
        const from = mine
          ? /** @type {any} */ (transfer).resumedFrom
          : /** @type {any} */ (transfer).continuedFrom;
        if (from && transfer.bytes < size) parts.push(`continued from ${formatBytes(from)}`);
        if (rate > 0)
          parts.push(`${formatBytes(rate)}/s`, formatEta(transfer.speed.eta(size - transfer.bytes)));
        return parts.filter(Boolean).join(' · ');
      }
      case 'interrupted':
        return `Connection lost at ${formatBytes(transfer.bytes)}; resuming when ${entry.peerName} is back…`;
      case 'done':
        return mine
          ? `Sent to ${entry.peerName}.`
          : entry.saved
            ? 'Saved.'
            : 'Received and checked. Save it to keep it.';
      case 'declined':
        return mine ? `${entry.peerName} declined.` : 'Declined.';
      default:
        return transfer.reason || 'Stopped.';
    }
  }

  /** @param {import('./files.js').Entry} entry */
  build(entry) {
    const { offer } = entry.transfer;
    const item = el('li', `transfer ${entry.direction}`);
    item.dataset.testid = 'transfer';
    item.dataset.direction = entry.direction;
    const head = el('p', 'transfer-head');
    const name = el('span', 'transfer-name', offer.name);
    name.dataset.testid = 'transfer-name';
    name.title = offer.name;
    head.append(el('span', 'transfer-who'), name);
    const meta = el('p', 'transfer-meta small', `${formatBytes(offer.size)} · ${kindOf(offer.type)}`);
    meta.dataset.testid = 'transfer-meta';
    const bar = /** @type {HTMLProgressElement} */ (el('progress'));
    bar.setAttribute('aria-label', `${entry.direction === 'out' ? 'Sending' : 'Receiving'} ${offer.name}`);
    const status = el('p', 'transfer-status small');
    status.dataset.testid = 'transfer-status';
    status.setAttribute('aria-live', 'polite');
    const actions = el('div', 'row transfer-actions');
    /** @type {Array<[string, string, string, () => void]>} */
    const buttons = [
      ['decline', 'Decline', 'button secondary', () => this.files.decline(entry.id)],
      ['accept', 'Accept', 'button', () => this.files.accept(entry.id)],
      ['cancel', 'Cancel', 'button secondary', () => this.files.cancel(entry.id)],
      ['save', 'Save', 'button', () => this.save(entry)],
      ['dismiss', 'Dismiss', 'button quiet', () => this.files.dismiss(entry.id)],
    ];
    for (const [action, label, className, run] of buttons) {
      const button = el('button', className, label);
      button.setAttribute('type', 'button');
      button.dataset.action = action;
      button.dataset.testid = `transfer-${action}`;
      button.setAttribute('aria-label', `${label} ${offer.name}`);
      button.addEventListener('click', run);
      actions.append(button);
    }
    const warning = el('div', 'transfer-warning');
    warning.hidden = true;
    item.append(head, meta, bar, status, warning, actions);
    return item;
  }

  /** @param {import('./files.js').Entry} entry */
  async save(entry) {
    if (!entry.disk) return;
    try {
      const file = await entry.disk.file();
      entry.saved = (await saveFile(file, entry.transfer.offer.name)) || entry.saved;
    } catch (error) {
      entry.saved = false;
      $('transfer-announce').textContent =
        `The file could not be saved: ${error instanceof Error ? error.message : error}`;
    }
    this.paint(entry, false);
  }

  /** "Not them": their offers declined, ours to them cancelled. @param {string} peerId */
  stopAll(peerId) {
    for (const entry of this.files.active) {
      if (entry.peerId !== peerId) continue;
      if (entry.direction === 'in' && entry.transfer.state === 'offered') this.files.decline(entry.id);
      else this.files.cancel(entry.id);
    }
  }

  /** @param {string} id */
  remove(id) {
    this.items.get(id)?.remove();
    this.items.delete(id);
    this.painted.delete(id);
    this.tray.hidden = this.items.size === 0;
    this.count();
  }
}
