// The verification code derivation (public/verify/verifycode.js), against the vectors the Python
// side (server/verification.py) is checked against too.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  CodeExchange,
  WORDS,
  commitment,
  fingerprintOfDer,
  normalizeFingerprint,
  sdpFingerprint,
  verificationCode,
} from '../../public/verify/verifycode.js';
import { compareScanned } from '../../public/verify/qrscan.js';

const { vectors } = JSON.parse(readFileSync(new URL('./verification-vectors.json', import.meta.url), 'utf8'));
const ANN = Array(32).fill('A1').join(':');
const BOB = Array(32).fill('B2').join(':');

test('the word list has 256 distinct words', () => {
  assert.equal(WORDS.length, 256);
  assert.equal(new Set(WORDS).size, 256);
});

test('known vectors give the same commitments, code and QR text as in Python', async () => {
  assert.ok(vectors.length >= 5);
  for (const v of vectors) {
    assert.equal(await commitment(v.a, v.nonce_a), v.commit_a);
    assert.equal(await commitment(v.b, v.nonce_b), v.commit_b);
    const result = await verificationCode(v.a, v.nonce_a, v.b, v.nonce_b);
    assert.equal(result.code, v.code);
    assert.equal(result.qr, v.qr);
    assert.equal(result.words.length, 5);
  }
});

test('order does not matter, and any change of a fingerprint or a nonce changes the code', async () => {
  for (const v of vectors) {
    assert.equal(
      (await verificationCode(v.a, v.nonce_a, v.b, v.nonce_b)).qr,
      (await verificationCode(v.b, v.nonce_b, v.a, v.nonce_a)).qr,
    );
  }
  const v = vectors[1];
  const a = normalizeFingerprint(v.a);
  const flipped = (a[0] === 'A' ? 'B' : 'A') + a.slice(1);
  const base = (await verificationCode(a, v.nonce_a, v.b, v.nonce_b)).qr;
  assert.notEqual((await verificationCode(flipped, v.nonce_a, v.b, v.nonce_b)).qr, base);
  const nonce = (v.nonce_b[0] === '0' ? '1' : '0') + v.nonce_b.slice(1);
  assert.notEqual((await verificationCode(a, v.nonce_a, v.b, nonce)).qr, base);
});

/** Both commit when the channel opens; each answers what arrives, in order. */
async function run(
  /** @type {CodeExchange} */ one,
  /** @type {CodeExchange} */ other,
  oneFp = ANN,
  otherFp = BOB,
) {
  let toOther = await one.start();
  let toOne = await other.start();
  while (toOther.length || toOne.length) {
    const repliesToOne = [];
    for (const m of toOther) repliesToOne.push(...(await other.receive(m.type, m.data, oneFp)));
    const repliesToOther = [];
    for (const m of toOne) repliesToOther.push(...(await one.receive(m.type, m.data, otherFp)));
    toOther = repliesToOther;
    toOne = repliesToOne;
  }
}

test('two exchanges agree on a code made of both nonces, fresh each time', async () => {
  const ann = new CodeExchange(ANN);
  const bob = new CodeExchange(BOB);
  await run(ann, bob);
  assert.ok(ann.result && bob.result);
  assert.equal(ann.result.qr, bob.result.qr);
  assert.equal(ann.result.qr, (await verificationCode(ANN, ann.nonce, BOB, bob.nonce)).qr);
  const again = [new CodeExchange(ANN), new CodeExchange(BOB)];
  await run(again[0], again[1]);
  assert.notEqual(again[0].result?.qr, ann.result.qr);
});

test('a nonce is never sent before our commitment, even when theirs comes first', async () => {
  const ann = new CodeExchange(ANN);
  const theirs = await new CodeExchange(BOB).start();
  // The commitment arrives while our own is still being hashed for the open channel.
  const [atOpen, answer] = await Promise.all([ann.start(), ann.receive(theirs[0].type, theirs[0].data, BOB)]);
  assert.deepEqual(
    [...atOpen, ...answer].map((m) => m.type),
    ['verify-commit', 'verify-reveal'],
  );
});

test(
  'the exchange refuses a reveal before a commitment, ' + 'a nonce that does not match, a second commitment',
  async () => {
    const nonce = 'ab'.repeat(32);
    const early = new CodeExchange(ANN);
    await early.receive('verify-reveal', nonce, BOB);
    assert.equal(early.failed, 'revealed before committing');

    const lying = new CodeExchange(ANN);
    await lying.receive('verify-commit', await commitment(BOB, nonce), BOB);
    await lying.receive('verify-reveal', 'cd'.repeat(32), BOB);
    assert.equal(lying.failed, 'does not match its commitment');
    await lying.receive('verify-reveal', nonce, BOB);
    assert.equal(lying.result, null); // nothing is taken after a failure

    const twice = new CodeExchange(ANN);
    await twice.receive('verify-commit', await commitment(BOB, nonce), BOB);
    await twice.receive('verify-commit', await commitment(BOB, 'cd'.repeat(32)), BOB);
    assert.equal(twice.failed, 'committed twice');

    for (const bad of ['AB'.repeat(32), 'ab'.repeat(31), 7, null]) {
      const broken = new CodeExchange(ANN);
      await broken.receive('verify-commit', bad, BOB);
      assert.equal(broken.failed, 'malformed');
    }
  },
);

test("a scanned QR text is a match only when it is this link's whole code", () => {
  const qr = `LANCALL-VERIFY-2 a-b-c-d-e ${'ab'.repeat(32)}`;
  assert.equal(compareScanned(` ${qr}\n`, qr), 'match');
  assert.equal(compareScanned(qr.slice(0, -1) + 'c', qr), 'differs'); // same words, another digest
  assert.equal(compareScanned(`LANCALL-VERIFY-1 a-b-c-d-e ${'ab'.repeat(32)}`, qr), 'differs');
  assert.equal(compareScanned('https://192.168.1.2:8443/', qr), 'not-a-code');
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
  const sdp =
    `v=0\r\na=fingerprint:sha-384 ${Array(48).fill('cd').join(':')}\r\n` + `a=fingerprint:sha-256 ${fp}\r\n`;
  assert.equal(sdpFingerprint(sdp), fp.toUpperCase());
  assert.equal(sdpFingerprint('v=0\r\n'), null);
  // SHA-256 of the three bytes "abc" (FIPS 180-2 example).
  const der = new TextEncoder().encode('abc');
  assert.equal(
    (await fingerprintOfDer(der.buffer)).replaceAll(':', ''),
    'BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD',
  );
});
