// The verification code derivation (public/verifycode.js), against the vectors the Python
// side (server/verification.py) is checked against too.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  WORDS, fingerprintOfDer, normalizeFingerprint, sdpFingerprint, verificationCode,
} from '../../public/verifycode.js';

const { vectors } = JSON.parse(readFileSync(new URL('./verification-vectors.json', import.meta.url), 'utf8'));

test('the word list has 256 distinct words', () => {
  assert.equal(WORDS.length, 256);
  assert.equal(new Set(WORDS).size, 256);
});

test('known vectors give the same code and QR text as in Python', async () => {
  assert.ok(vectors.length >= 4);
  for (const { a, b, code, qr } of vectors) {
    const result = await verificationCode(a, b);
    assert.equal(result.code, code);
    assert.equal(result.qr, qr);
    assert.equal(result.words.length, 5);
  }
});

test('order does not matter, and any change of either fingerprint changes the code', async () => {
  for (const { a, b } of vectors) {
    assert.equal((await verificationCode(a, b)).qr, (await verificationCode(b, a)).qr);
  }
  const a = normalizeFingerprint(vectors[1].a);
  const b = normalizeFingerprint(vectors[1].b);
  const flipped = (a[0] === 'A' ? 'B' : 'A') + a.slice(1);
  assert.notEqual((await verificationCode(flipped, b)).qr, (await verificationCode(a, b)).qr);
});

test('fingerprints are normalised and bad ones refused', () => {
  const upper = Array(32).fill('0F').join(':');
  assert.equal(normalizeFingerprint(`sha-256 ${upper.toLowerCase()}`), upper);
  assert.equal(normalizeFingerprint(upper.replaceAll(':', '')), upper);
  assert.throws(() => normalizeFingerprint('AB:CD'));
  assert.throws(() => normalizeFingerprint(Array(32).fill('ZZ').join(':')));
});

test('the SHA-256 fingerprint is read from SDP, and a DER certificate is hashed like DTLS does', async () => {
  const fp = Array(32).fill('ab').join(':');
  const sdp = `v=0\r\na=fingerprint:sha-384 ${Array(48).fill('cd').join(':')}\r\na=fingerprint:sha-256 ${fp}\r\n`;
  assert.equal(sdpFingerprint(sdp), fp.toUpperCase());
  assert.equal(sdpFingerprint('v=0\r\n'), null);
  // SHA-256 of the three bytes "abc" (FIPS 180-2 example).
  const der = new TextEncoder().encode('abc');
  assert.equal((await fingerprintOfDer(der.buffer)).replaceAll(':', ''), 'BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD');
});
