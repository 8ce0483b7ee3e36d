// Text from another device, made safe to show (public/core/plaintext.js, issue 18 finding 31).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { safeName } from '../../public/data/filestore.js';
import { shownMediaType, shownText } from '../../public/core/plaintext.js';
import { theirWords } from '../../public/data/transfer.js';

test(
  'bidi controls and other format characters are removed; ' +
    'joiners and line breaks kept where they belong',
  () => {
    assert.equal(shownText('invoice_2024_\u202Efdp.exe'), 'invoice_2024_fdp.exe');
    for (const ch of [
      '\u202A',
      '\u202B',
      '\u202C',
      '\u202D',
      '\u2066',
      '\u2067',
      '\u2068',
      '\u2069',
      '\u200E',
      '\u200F',
      '\u061C',
    ]) {
      assert.equal(shownText(`a${ch}b`), 'ab', `U+${ch.codePointAt(0).toString(16)}`);
    }
    for (const ch of [
      '\u200B',
      '\u2060',
      '\u00AD',
      '\uFEFF',
      '\u2028',
      '\u2029',
      '\u0085',
      '\u0000',
      '\u007F',
      '\u{E0041}',
    ]) {
      assert.equal(shownText(`a${ch}b`), 'ab', `U+${ch.codePointAt(0).toString(16)}`);
    }
    assert.equal(shownText('👩\u200D💻 می\u200Cخواهم'), '👩\u200D💻 می\u200Cخواهم');
    assert.equal(shownText('one\ntwo\tthree'), 'onetwo three');
    assert.equal(shownText('one\ntwo', { lines: true }), 'one\ntwo');
  },
);

test('a received file name shows what it is', () => {
  assert.equal(safeName('invoice_2024_\u202Efdp.exe'), 'invoice_2024_fdp.exe');
  assert.equal(safeName('../../etc/\u2066passwd'), 'passwd');
  assert.equal(safeName('\u202E'), 'file');
});

test('a media type must look like one; anything else is unknown', () => {
  assert.equal(shownMediaType('application/pdf'), 'application/pdf');
  assert.equal(shownMediaType('Image/PNG'), 'image/png');
  assert.equal(shownMediaType('application/\u202Efdp'), '');
  assert.equal(shownMediaType('text/html; <b>x</b>'), '');
  assert.equal(shownMediaType(42), '');
});

test('what the other side says about a transfer reads as one sentence', () => {
  assert.equal(theirWords('The other side cancelled', 'Cancelled.'), 'The other side cancelled.');
  assert.equal(theirWords('The other side cancelled', undefined), 'The other side cancelled.');
  assert.equal(theirWords('The other side cancelled', 'Disk full'), 'The other side cancelled: Disk full.');
  assert.equal(
    theirWords('The other device reported a problem', 'bad\u202E chunk!'),
    'The other device reported a problem: bad chunk!',
  );
  assert.equal(theirWords('x', 'y'.repeat(500)).length, 'x: '.length + 200 + 1);
});
