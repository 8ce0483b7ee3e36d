// Incremental SHA-256 against the FIPS 180-4 / NIST example vectors and against Python's
// hashlib on random data split at random points (node --test).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { Sha256, sha256Hex, toHex } from '../../public/data/sha256.js';

const text = (s) => new TextEncoder().encode(s);

test('NIST example vectors', () => {
  assert.equal(
    sha256Hex(new Uint8Array(0)),
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  );
  assert.equal(sha256Hex(text('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(
    sha256Hex(text('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  );
  assert.equal(
    sha256Hex(
      text(
        'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop' +
          'jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
      ),
    ),
    'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
  );
});

test('one million a, fed in uneven pieces', () => {
  const hash = new Sha256();
  const piece = new Uint8Array(997).fill(0x61);
  let left = 1_000_000;
  while (left > 0) {
    const n = Math.min(left, piece.length);
    hash.update(piece.subarray(0, n));
    left -= n;
  }
  assert.equal(hash.hex(), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
});

test('every length around the padding boundaries', () => {
  const sizes = [];
  for (let n = 0; n <= 130; n++) sizes.push(n);
  const data = randomBytes(130);
  const script =
    'import hashlib,sys\nd=sys.stdin.buffer.read()\n' +
    'print(" ".join(hashlib.sha256(d[:n]).hexdigest() for n in range(131)))';
  const expected = execFileSync('python3', ['-c', script], { input: data }).toString().trim().split(' ');
  for (const n of sizes) assert.equal(sha256Hex(data.subarray(0, n)), expected[n], `length ${n}`);
});

test('random data in random chunks matches hashlib', () => {
  for (const size of [1, 63, 64, 65, 4096, 1 << 20, (3 << 20) + 17]) {
    const data = new Uint8Array(randomBytes(size));
    const expected = execFileSync(
      'python3',
      ['-c', 'import hashlib,sys;print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'],
      {
        input: data,
        maxBuffer: 1 << 26,
      },
    )
      .toString()
      .trim();
    const hash = new Sha256();
    let offset = 0;
    while (offset < size) {
      const n = Math.min(size - offset, 1 + Math.floor(Math.random() * 200_000));
      hash.update(data.subarray(offset, offset + n));
      offset += n;
    }
    assert.equal(toHex(hash.digest()), expected, `size ${size}`);
  }
});

test('ArrayBuffer input, and no update after digest', () => {
  const hash = new Sha256().update(text('ab').buffer).update(text('c'));
  assert.equal(hash.hex(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.throws(() => hash.update(text('x')));
});
