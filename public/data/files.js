// Files to and from people on the network (issue 12): one FileSender or FileReceiver
// (public/data/transfer.js) per file, on a named channel of the person's data link
// (public/data/datalinks.js), received to disk (public/data/filestore.js). A transfer whose
// channel closes midway is offered again on a new channel as soon as the link can be
// reopened, and continues where the receiver's file ends. The screen stays awake while
// anything is moving. No DOM here beyond the wake lock: the screens are in
// public/data/transfersui.js.

import { Emitter } from '../core/events.js';
import { DiskFile, HashWorker, safeName, storeProblem, sweepIncoming } from './filestore.js';
import { shownMediaType } from '../core/plaintext.js';
import { FileReceiver, FileSender, formatBytes, transferIdOf } from './transfer.js';

const RETRY_MS = 2000; // between attempts to reopen a dropped link for a transfer
const GIVE_UP_MS = 5 * 60 * 1000; // a transfer whose person stays unreachable this long fails
const WAIT_RESUME_MS = 10 * 60 * 1000; // a receiver waits this long for the sender to come back

/**
 * @typedef {{disk: DiskFile, receiver: FileReceiver}} KeptPart the start of a file whose
 *   sender could not resume it (on `disk`, `receiver.written` bytes once `receiver.writes`
 *   settled), kept so that the same file sent again continues
 * @typedef {{
 *   id: string, peerId: string, peerName: string, direction: 'out' | 'in',
 *   transfer: FileSender | FileReceiver, disk?: DiskFile, saved?: boolean,
 *   kept?: KeptPart, continues?: KeptPart, accepting?: boolean, reconnecting?: boolean,
 *   timer?: ReturnType<typeof setTimeout>,
 * }} Entry `kept`: a failed receive's part (see KeptPart); `continues`: the part an offer goes on from
 */

/**
 * Every transfer of this page, by id. Events: `added` (Entry), `changed` (Entry),
 * `removed` (Entry).
 */
export class FileTransfers extends Emitter {
  /**
   * @param {import('./datalinks.js').DataLinks} dataLinks
   * @param {{get: (id: string) => {name: string} | undefined}} people
   * @param {{chunkSize?: number}} [options] chunkSize: smaller in tests, to see progress
   */
  constructor(dataLinks, people, options = {}) {
    super();
    this.dataLinks = dataLinks;
    this.people = people;
    this.options = options;
    /** @type {Map<string, Entry>} */
    this.entries = new Map();
    /** @type {Promise<void> | null} while set, disk writes of files accepted from now on wait
     * for it: a browser test holds the disk (the sender is then held by its window) to press
     * Cancel or drop the link while a file is still moving, then lets go. null in use. */
    this.diskHeldForTests = null;
    /** @type {number | null} bytes a file sent from now on may have beyond the last ack
     * (public/data/transfer.js WINDOW): a browser test shrinks it, so a small file cannot be
     * sent whole while the receiver's disk is held. null in use. */
    this.sendWindowForTests = null;
    this.wake = new WakeLock();
    sweepIncoming(); // files a closed page never finished or saved, from earlier days
    storeProblem();
    dataLinks.on('channel', ({ peerId, label, channel }) => {
      const id = transferIdOf(label);
      if (id) this.incomingChannel(peerId, id, channel);
    });
    // Which of these transfers can you still send? (docs/protocol.md §9.2, "A sender that
    // cannot resume"): a page that reloaded has lost its files and says so.
    dataLinks.define('file-status', isFileStatus);
    dataLinks.subscribe(
      'file-status',
      (/** @type {{ids: string[]}} */ data, /** @type {{peerId: string}} */ from) => ({
        sending: data.ids.filter((id) => {
          const entry = this.entries.get(id);
          return entry?.direction === 'out' && entry.peerId === from.peerId && !entry.transfer.finished;
        }),
      }),
    );
  }

  /**
   * They are here (again): if a file from them waits to resume, ask whether they can still
   * send it. A page that was reloaded or closed has lost the file, and the receiver would
   * wait for minutes (issue 19, 3); it is told now, in words. An app that does not answer
   * this leaves the transfer waiting, as before. @param {string} peerId
   */
  async checkSenders(peerId) {
    const waiting = [...this.entries.values()].filter(
      (e) => e.direction === 'in' && e.peerId === peerId && e.transfer.state === 'interrupted',
    );
    if (!waiting.length) return;
    let answer;
    try {
      answer = await this.dataLinks.request(
        peerId,
        'file-status',
        { ids: waiting.map((e) => e.id) },
        { timeoutMs: 10_000 },
      );
    } catch {
      return; // not reachable, or an app that cannot say: keep waiting
    }
    const sending = new Set(Array.isArray(answer?.sending) ? answer.sending : []);
    for (const entry of waiting) {
      if (sending.has(entry.id) || entry.transfer.state !== 'interrupted') continue;
      const at = formatBytes(/** @type {FileReceiver} */ (entry.transfer).written);
      this.keepPart(entry);
      entry.transfer.machine.fire(
        'fail',
        `${entry.peerName} can no longer send the rest (their page was reloaded or closed) after ${at}: ` +
          'ask them to send it again, and it continues from there.',
      );
    }
  }

  /**
   * A receive that failed because its sender cannot resume keeps what arrived, so the same
   * file sent again goes on from there as one transfer (issue 19, 3). @param {Entry} entry
   */
  keepPart(entry) {
    const receiver = /** @type {FileReceiver} */ (entry.transfer);
    if (entry.disk && receiver.received > 0) entry.kept = { disk: entry.disk, receiver };
  }

  /**
   * The kept part an offer from this person continues: the same name, size and type, from a
   * sender that can go on from a part (the sender checks the part's SHA-256 before it does).
   * @param {string} peerId @param {import('./transfer.js').Offer} offer @returns {Entry | undefined}
   */
  keptFor(peerId, offer) {
    const name = this.nameOf(peerId);
    if (!offer.partial) return undefined;
    return [...this.entries.values()].find(
      (e) =>
        e.kept &&
        e.direction === 'in' &&
        e.transfer.state === 'failed' &&
        (e.peerId === peerId || e.peerName === name) &&
        e.transfer.offer.name === offer.name &&
        e.transfer.offer.size === offer.size &&
        e.transfer.offer.type === offer.type,
    );
  }

  /**
   * Send these files to this person: each is offered on its own; they answer each.
   * @param {string} peerId @param {Iterable<File>} files
   */
  send(peerId, files) {
    for (const file of files) {
      const source = {
        read: async (/** @type {number} */ offset, /** @type {number} */ length) =>
          new Uint8Array(await file.slice(offset, offset + length).arrayBuffer()),
      };
      const hasher = typeof Worker === 'function' ? new HashWorker() : undefined;
      const sender = new FileSender({ name: file.name || 'file', size: file.size, type: file.type }, source, {
        chunkSize: this.options.chunkSize,
        hasher,
        window: this.sendWindowForTests ?? undefined,
      });
      sender.on('state', () => sender.finished && sender.state !== 'done' && hasher?.stop());
      const entry = this.add({
        id: sender.id,
        peerId,
        peerName: this.nameOf(peerId),
        direction: 'out',
        transfer: sender,
      });
      sender.on('state', ({ to }) => to === 'interrupted' && this.reconnect(entry));
      this.open(entry).catch(() => this.reconnect(entry));
    }
  }

  /** Open the next channel of an outgoing transfer. @param {Entry} entry */
  async open(entry) {
    const sender = /** @type {FileSender} */ (entry.transfer);
    const channel = await this.dataLinks.channel(entry.peerId, sender.nextLabel());
    if (sender.finished) channel.close();
    else sender.attach(channel);
  }

  /** The link dropped midway: try again until it is back (or the user cancels). @param {Entry} entry */
  async reconnect(entry) {
    const sender = /** @type {FileSender} */ (entry.transfer);
    if (entry.reconnecting) return;
    entry.reconnecting = true;
    const started = Date.now();
    try {
      while (sender.state === 'interrupted') {
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        if (sender.state !== 'interrupted') return;
        if (Date.now() - started > GIVE_UP_MS) {
          sender.machine.fire('fail', `${entry.peerName} stayed unreachable; the file was not sent.`);
          return;
        }
        try {
          await this.open(entry);
        } catch {
          // Not reachable yet: the next round tries again.
        }
      }
    } finally {
      entry.reconnecting = false;
    }
  }

  /**
   * A transfer channel the other side opened: its first message is the offer.
   * @param {string} peerId @param {string} id @param {RTCDataChannel} channel
   */
  incomingChannel(peerId, id, channel) {
    channel.binaryType = 'arraybuffer';
    channel.addEventListener(
      'message',
      (event) => {
        const offer = FileReceiver.offerOf(event.data, id);
        if (!offer) {
          channel.close(); // not a transfer this app can read: that channel only
          return;
        }
        const known = this.entries.get(id);
        if (known && known.direction === 'in' && known.peerId === peerId) {
          /** @type {FileReceiver} */ (known.transfer).attach(channel, offer);
          return;
        }
        if (known) {
          channel.close(); // an id that is someone else's transfer
          return;
        }
        offer.name = safeName(offer.name);
        offer.type = shownMediaType(offer.type);
        const receiver = new FileReceiver(offer);
        // The same file again, after its sender could not resume it: one transfer, whose
        // card replaces the failed one and which goes on from the part kept.
        const earlier = this.keptFor(peerId, offer);
        if (earlier) {
          this.entries.delete(earlier.id);
          this.emit('removed', earlier);
        }
        const entry = this.add({
          id,
          peerId,
          peerName: this.nameOf(peerId),
          direction: 'in',
          transfer: receiver,
          continues: earlier?.kept,
        });
        receiver.attach(channel);
        receiver.on('state', ({ to }) => {
          if (to === 'interrupted') {
            entry.timer = setTimeout(() => {
              this.keepPart(entry);
              receiver.machine.fire(
                'fail',
                `${entry.peerName} did not come back; the file was not saved. ` +
                  'If they send it again, it continues from there.',
              );
            }, WAIT_RESUME_MS);
            if (this.people.get(peerId)) this.checkSenders(peerId); // still listed: a reload, or a blip?
          } else clearTimeout(entry.timer);
          // Declined (or ended) before it took the kept part over: that part goes.
          if (receiver.finished && entry.continues && !entry.disk) entry.continues.disk.discard();
        });
        // Known long before any offer (checked at start), so no Accept shows first.
        storeProblem().then((problem) => problem && receiver.fail(problem));
      },
      { once: true },
    );
  }

  /** Our user accepts an incoming file. @param {string} id */
  async accept(id) {
    const entry = this.entries.get(id);
    // Once: a second DiskFile on the same OPFS file could not open it (one access handle per file).
    if (
      !entry ||
      entry.direction !== 'in' ||
      entry.disk ||
      entry.accepting ||
      entry.transfer.state !== 'offered'
    )
      return;
    const receiver = /** @type {FileReceiver} */ (entry.transfer);
    const part = entry.continues;
    if (part) {
      entry.accepting = true;
      await part.receiver.writes; // what arrived before is all on disk
      const sha256 = await part.disk.peek().catch(() => null);
      entry.accepting = false;
      entry.disk = part.disk;
      if (sha256 && receiver.acceptFrom(this.sinkFor(part.disk), part.receiver.written, sha256)) return;
      part.disk.discard(); // unreadable, or gone meanwhile: from the start, on a new file
      entry.disk = undefined;
      entry.continues = undefined;
      if (receiver.state !== 'offered') return;
    }
    receiver.accept(this.sinkFor((entry.disk = new DiskFile(id))));
  }

  /** The disk as a transfer's sink (held in browser tests). @param {DiskFile} disk */
  sinkFor(disk) {
    const held = this.diskHeldForTests;
    if (!held) return disk;
    return {
      writeMany: (/** @type {Uint8Array[]} */ parts) => held.then(() => disk.writeMany(parts)),
      write: (/** @type {Uint8Array} */ bytes) => held.then(() => disk.write(bytes)),
      digest: () => disk.digest(),
      discard: () => disk.discard(),
    };
  }

  /** @param {string} id */
  decline(id) {
    const entry = this.entries.get(id);
    if (entry?.direction === 'in') /** @type {FileReceiver} */ (entry.transfer).decline();
  }

  /** @param {string} id */
  cancel(id) {
    this.entries.get(id)?.transfer.cancel('Cancelled.');
  }

  /** Forget a finished transfer (and its received file, once saved or not wanted). @param {string} id */
  dismiss(id) {
    const entry = this.entries.get(id);
    if (!entry || !entry.transfer.finished) return;
    this.entries.delete(id);
    // A saved (or unwanted) file goes from disk; a part kept for a retry goes with its worker.
    if (entry.transfer.state === 'done') entry.disk?.remove();
    else entry.disk?.discard();
    this.emit('removed', entry);
  }

  /** Transfers under way (offered, moving, checking, waiting to resume). */
  get active() {
    return [...this.entries.values()].filter((entry) => !entry.transfer.finished);
  }

  /** @param {Omit<Entry, 'reconnecting' | 'timer'> & {reconnecting?: boolean, timer?: any}} entry */
  add(entry) {
    this.entries.set(entry.id, entry);
    entry.transfer.on('state', () => {
      this.wake.want(
        this.active.some((e) => e.transfer.state !== 'offered' && e.transfer.state !== 'offering'),
      );
      this.emit('changed', entry);
    });
    entry.transfer.on('progress', () => this.emit('changed', entry));
    this.emit('added', entry);
    return entry;
  }

  /** @param {string} peerId */
  nameOf(peerId) {
    return this.people.get(peerId)?.name || 'Someone';
  }

  /** Someone was renamed or left. @param {import('../core/roster.js').Person} person */
  personChanged(person) {
    if (!person.remove) this.checkSenders(person.id);
    for (const entry of this.entries.values()) {
      if (entry.peerId === person.id && person.name && entry.peerName !== person.name) {
        entry.peerName = person.name;
        this.emit('changed', entry);
      }
    }
  }
}

/** Screen Wake Lock while files move (a locked phone would pause the transfer). */
class WakeLock {
  constructor() {
    this.wanted = false;
    /** @type {any} */
    this.sentinel = null;
    // The lock is released when the page is hidden; take it again when it is back.
    document.addEventListener('visibilitychange', () => this.want(this.wanted));
  }

  /** @param {boolean} on */
  async want(on) {
    this.wanted = on;
    const api = /** @type {any} */ (navigator).wakeLock;
    if (!api) return;
    if (!on) {
      const sentinel = this.sentinel;
      this.sentinel = null;
      await sentinel?.release().catch(() => {});
      return;
    }
    if (this.sentinel && !this.sentinel.released) return;
    if (document.visibilityState !== 'visible') return;
    try {
      this.sentinel = await api.request('screen');
    } catch {
      // Refused (battery saver, policy): the transfer resumes after a lock instead.
    }
  }

  get held() {
    return Boolean(this.sentinel && !this.sentinel.released);
  }
}

/** `file-status` request data: the transfer ids the receiver waits on. @param {unknown} data */
function isFileStatus(data) {
  const ids = /** @type {any} */ (data)?.ids;
  return (
    Array.isArray(ids) && ids.length <= 64 && ids.every((id) => typeof id === 'string' && id.length <= 64)
  );
}
