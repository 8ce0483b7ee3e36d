// SHA-256 of a file being sent, off the page's thread (public/filestore.js HashWorker):
// {bytes} messages are hashed in order; {op: 'hex'} is answered with the digest.

import { Sha256 } from './sha256.js';

const hash = new Sha256();

self.onmessage = (/** @type {MessageEvent} */ event) => {
  if (event.data.op === 'hex') self.postMessage({ hex: hash.hex() });
  else hash.update(new Uint8Array(event.data.bytes));
};
