// Throughput of public/data/sha256.js in Node (MB/s), next to Node's native SHA-256 for scale.
// Run: node --experimental-detect-module bench/sha256.mjs [MB]
import { createHash, randomBytes } from 'node:crypto';

import { Sha256 } from '../public/data/sha256.js';

const megabytes = Number(process.argv[2] ?? 200);
const chunk = new Uint8Array(randomBytes(256 * 1024));
const chunks = Math.ceil((megabytes * 1024 * 1024) / chunk.length);

function time(label, run) {
  run(Math.ceil(chunks / 10)); // warm up the JIT
  const start = process.hrtime.bigint();
  run(chunks);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const mb = (chunks * chunk.length) / 1024 / 1024;
  console.log(`${label.padEnd(28)} ${mb.toFixed(0).padStart(5)} MB  ${seconds.toFixed(2).padStart(6)} s  ${(mb / seconds).toFixed(0).padStart(5)} MB/s`);
}

time('public/data/sha256.js (JS)', (n) => {
  const hash = new Sha256();
  for (let i = 0; i < n; i++) hash.update(chunk);
  hash.digest();
});
time('node:crypto (OpenSSL)', (n) => {
  const hash = createHash('sha256');
  for (let i = 0; i < n; i++) hash.update(chunk);
  hash.digest();
});
