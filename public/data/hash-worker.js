// SHA-256 of a file being sent, off the page's thread (public/data/filestore.js HashWorker):
// {bytes} messages are hashed in order; {op: 'hex'} is answered with the digest, and
// {op: 'peek'} with the digest of what came so far (the hash goes on).

import { Sha256 } from './sha256.js';

const hash = new Sha256();

self.onmessage = (/** @type {MessageEvent} */ event) => {
  if (event.data.op === 'hex') self.postMessage({ hex: hash.hex() });
  else if (event.data.op === 'peek') self.postMessage({ hex: hash.peek() });
  else hash.update(new Uint8Array(event.data.bytes));
};
