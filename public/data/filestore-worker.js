// The receiving side's disk: writes a file in the origin private file system through a
// synchronous access handle (workers only; the fastest way to write there) and hashes
// it as it goes, so a large file never sits in memory and the page's thread stays free.
//
// Messages in: {op: 'open', name} | {op: 'write', bytes} or {op: 'write', parts: [bytes…]} |
// {op: 'peek'} | {op: 'digest'} | {op: 'discard'}, each with a `seq`; every one is answered
// {seq, ok: true, value?} or {seq, ok: false, error}.

import { Sha256 } from './sha256.js';

const DIRECTORY = 'incoming';

/** @type {FileSystemSyncAccessHandle | null} */
let handle = null;
/** @type {FileSystemDirectoryHandle | null} */
let directory = null;
let name = '';
let at = 0;
let hash = new Sha256();

/** @type {Record<string, (message: any) => Promise<unknown> | unknown>} */
const operations = {
  async open(message) {
    const root = await navigator.storage.getDirectory();
    directory = await root.getDirectoryHandle(DIRECTORY, { create: true });
    name = message.name;
    const file = await directory.getFileHandle(name, { create: true });
    handle = await /** @type {any} */ (file).createSyncAccessHandle();
    /** @type {FileSystemSyncAccessHandle} */ (handle).truncate(0);
    at = 0;
    hash = new Sha256();
  },
  write(message) {
    for (const buffer of message.parts ?? [message.bytes]) {
      const bytes = new Uint8Array(buffer);
      const written = /** @type {FileSystemSyncAccessHandle} */ (handle).write(bytes, { at });
      if (written !== bytes.length) throw new Error('The device ran out of space.');
      at += written;
      hash.update(bytes);
    }
  },
  peek() {
    return hash.peek();
  },
  digest() {
    handle?.flush();
    handle?.close();
    handle = null;
    return hash.hex();
  },
  async discard() {
    handle?.close();
    handle = null;
    await directory?.removeEntry(name).catch(() => {});
  },
};

self.onmessage = async (/** @type {MessageEvent} */ event) => {
  const { seq, op } = event.data;
  try {
    const value = await operations[op](event.data);
    self.postMessage({ seq, ok: true, value });
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    self.postMessage({ seq, ok: false, error: /quota/i.test(text) ? 'The device ran out of space.' : text });
  }
};
