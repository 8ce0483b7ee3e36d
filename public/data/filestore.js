// Where received files go: one file per transfer in the origin private file system
// (OPFS), written by a worker (public/data/filestore-worker.js) that also hashes it; then
// saved as a download. Nothing of a file is kept in the page's memory.

import { assetUrl } from '../core/dom.js';
import { shownText } from '../core/plaintext.js';

const DIRECTORY = 'incoming';

/** Whether this browser can receive files to disk (OPFS with sync access handles in workers). */
export function canReceive() {
  return (
    typeof navigator.storage?.getDirectory === 'function' &&
    typeof Worker === 'function' &&
    window.isSecureContext
  );
}

/** @type {Promise<string> | null} */
let storeChecked = null;

/**
 * Why this browser cannot keep received files, in words for the person ('' when it can).
 * Checked once: Firefox's private windows have the API but refuse it (SecurityError).
 * @returns {Promise<string>}
 */
export function storeProblem() {
  storeChecked ??= (async () => {
    const elsewhere = 'Open this page in another browser, or in a normal window, to receive files.';
    if (!canReceive()) return `This browser cannot store received files. ${elsewhere}`;
    try {
      await navigator.storage.getDirectory();
      return '';
    } catch (error) {
      const privately = /** @type {any} */ (error)?.name === 'SecurityError';
      if (!privately) return `This browser refused storage for received files. ${elsewhere}`;
      // Read by both sides (the sender gets it as the receiver's words): neither "you" nor "they".
      return (
        'A private window cannot receive files: the browser gives it no storage for them. ' +
        'They can be received in a normal window.'
      );
    }
  })();
  return storeChecked;
}

/**
 * A transfer's file on disk, as the receiver's sink (public/data/transfer.js `Sink`).
 */
export class DiskFile {
  /** @param {string} id the transfer id (the file's name in OPFS) */
  constructor(id) {
    this.id = id;
    this.worker = new Worker(assetUrl('data/filestore-worker.js'), { type: 'module' });
    this.seq = 0;
    /** @type {Map<number, {resolve: (v: any) => void, reject: (e: Error) => void}>} */
    this.waiting = new Map();
    this.worker.onmessage = (/** @type {MessageEvent} */ event) => {
      const { seq, ok, value, error } = event.data;
      const waiter = this.waiting.get(seq);
      this.waiting.delete(seq);
      if (ok) waiter?.resolve(value);
      else waiter?.reject(new Error(error));
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      for (const waiter of this.waiting.values()) waiter.reject(new Error('The file store stopped.'));
      this.waiting.clear();
    };
    this.opened = this.call({ op: 'open', name: id });
    this.stopped = false;
  }

  /** @param {object} message @param {Transferable[]} [transfer] @returns {Promise<any>} */
  call(message, transfer = []) {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.worker.postMessage({ ...message, seq }, transfer);
    });
  }

  /** @param {Uint8Array} bytes */
  async write(bytes) {
    await this.opened;
    // The chunk's buffer moves to the worker (no copy) when it is the whole buffer.
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    const buffer = whole ? bytes.buffer : bytes.slice().buffer;
    await this.call({ op: 'write', bytes: buffer }, [buffer]);
  }

  /** Several chunks in one message to the worker, in order. @param {Uint8Array[]} parts */
  async writeMany(parts) {
    await this.opened;
    const buffers = parts.map((bytes) =>
      bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
        ? bytes.buffer
        : bytes.slice().buffer,
    );
    await this.call({ op: 'write', parts: buffers }, buffers);
  }

  /** The SHA-256 of what was written so far (a transfer continued from it checks it). */
  async peek() {
    await this.opened;
    return /** @type {Promise<string>} */ (this.call({ op: 'peek' }));
  }

  async digest() {
    await this.opened;
    const hex = await this.call({ op: 'digest' });
    this.stopped = true;
    this.worker.terminate();
    return hex;
  }

  async discard() {
    if (this.stopped) return; // discarded already, or finished (then `remove`)
    this.stopped = true;
    await this.opened.catch(() => {});
    await this.call({ op: 'discard' }).catch(() => {});
    this.worker.terminate();
  }

  /** The finished file (read from disk when used, not loaded into memory). */
  async file() {
    const directory = await (await navigator.storage.getDirectory()).getDirectoryHandle(DIRECTORY);
    return (await directory.getFileHandle(this.id)).getFile();
  }

  /** Delete the finished file from OPFS (after it was saved, or dismissed). */
  async remove() {
    const directory = await (await navigator.storage.getDirectory()).getDirectoryHandle(DIRECTORY);
    await directory.removeEntry(this.id).catch(() => {});
  }
}

/**
 * The sender's SHA-256, computed in a worker while the page sends (public/data/transfer.js
 * `Hasher`): the page's thread stays free to keep the channel's buffer filled.
 */
export class HashWorker {
  constructor() {
    this.worker = new Worker(assetUrl('data/hash-worker.js'), { type: 'module' });
  }

  /** @param {Uint8Array} bytes */
  update(bytes) {
    const copy = bytes.slice(); // the caller keeps its block (it is being sent)
    this.worker.postMessage({ bytes: copy.buffer }, [copy.buffer]);
  }

  /** @returns {Promise<string>} */
  hex() {
    return this.ask('hex').finally(() => this.worker.terminate());
  }

  /** The digest of what was hashed so far; hashing goes on. @returns {Promise<string>} */
  peek() {
    return this.ask('peek');
  }

  /** @param {'hex' | 'peek'} op @returns {Promise<string>} */
  ask(op) {
    return new Promise((resolve, reject) => {
      this.worker.onmessage = (/** @type {MessageEvent} */ event) => resolve(event.data.hex);
      this.worker.onerror = () => reject(new Error('The file could not be hashed.'));
      this.worker.postMessage({ op });
    });
  }

  /** A transfer that ends before its hash was needed. */
  stop() {
    this.worker.terminate();
  }
}

/** Remove leftovers of transfers a previous page never finished (only files older than a day). */
export async function sweepIncoming() {
  if (!canReceive()) return;
  try {
    const directory = await (
      await navigator.storage.getDirectory()
    ).getDirectoryHandle(DIRECTORY, { create: true });
    const dayAgo = Date.now() - 24 * 3600 * 1000;
    for await (const [name, handle] of /** @type {any} */ (directory).entries()) {
      const file = await handle.getFile().catch(() => null);
      if (file && file.lastModified < dayAgo) await directory.removeEntry(name).catch(() => {});
    }
  } catch {
    // Storage unavailable (private mode): nothing to sweep.
  }
}

/**
 * Save a received file: a download of the OPFS file (a Blob that reads from disk, so
 * even a large file is not loaded into memory); the browser puts it in Downloads or
 * asks where, as the user set it up.
 * @param {File} file @param {string} name @returns {Promise<boolean>}
 */
export async function saveFile(file, name) {
  const url = URL.createObjectURL(file);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return true;
}

/**
 * A file name safe to save and to show: the last path component, with no control or
 * format characters (a bidi override would show "…exe.pdf" for a program). @param {string} name
 */
export function safeName(name) {
  const base = shownText(name).split(/[\\/]/).pop() || '';
  const clean = base.replace(/^\.+/, '').trim();
  return clean || 'file';
}
