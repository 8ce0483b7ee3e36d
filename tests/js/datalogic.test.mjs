// Data links' pure parts: request bookkeeping, response shapes (node --test). The glare rule
// is public/connection/connection.js's isPolite (tests/js/connection.test.mjs).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  DataLinkError,
  isLine,
  isRequest,
  isResponse,
  Requests,
  OfferBudget,
} from '../../public/data/datalogic.js';

test('a response settles its own request with the data it carries', async () => {
  const requests = new Requests();
  const a = requests.create('ping', 1000, 'late');
  const b = requests.create('ping', 1000, 'late');
  assert.notEqual(a.id, b.id);
  assert.equal(requests.settle({ id: b.id, data: { t: 2 } }, 'Bob'), true);
  assert.deepEqual(await b.promise, { t: 2 });
  assert.equal(requests.size, 1);
  assert.equal(requests.settle({ id: 'made-up' }, 'Bob'), false);
  requests.failAll(new DataLinkError('closed', 'The link to Bob closed.'));
  await assert.rejects(a.promise, { code: 'closed' });
});

test('a request nobody answers fails with a timeout error in words', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const requests = new Requests();
  const { id, promise } = requests.create('slow', 5000, 'Bob didn’t answer (“slow”) within 5 s.');
  t.mock.timers.tick(4999);
  assert.equal(requests.size, 1);
  t.mock.timers.tick(1);
  await assert.rejects(
    promise,
    (error) => error instanceof DataLinkError && error.code === 'timeout' && /within 5 s/.test(error.message),
  );
  assert.equal(requests.settle({ id, data: 1 }, 'Bob'), false); // a late answer changes nothing
});

test('an error response rejects with its code and message; a malformed one is bad-response', async () => {
  const requests = new Requests();
  const known = requests.create('x', 1000, '');
  requests.settle({ id: known.id, error: { code: 'unknown-type', message: 'No.' } }, 'Bob');
  await assert.rejects(known.promise, { code: 'unknown-type', message: 'No.' });
  const strange = requests.create('x', 1000, '');
  requests.settle({ id: strange.id, error: { code: 'weird', message: 'Hm.' } }, 'Bob');
  await assert.rejects(strange.promise, { code: 'failed', message: 'Hm.' });
  const broken = requests.create('x', 1000, '');
  requests.settle({ id: broken.id, error: 'nope' }, 'Bob');
  await assert.rejects(
    broken.promise,
    (error) => error.code === 'bad-response' && error.message.includes('Bob'),
  );
});

test('message shapes: requests, responses and lines are checked', () => {
  assert.ok(isRequest({ id: 'r1', type: 'ping', data: { t: 1 } }));
  assert.ok(isRequest({ id: 'r1', type: 'ping' }));
  for (const bad of [
    null,
    [],
    { id: '', type: 'x' },
    { id: 'r', type: 7 },
    { id: 'x'.repeat(65), type: 'x' },
  ]) {
    assert.equal(isRequest(bad), false, JSON.stringify(bad));
  }
  assert.ok(isResponse({ id: 'r1' }));
  assert.equal(isResponse({ data: 1 }), false);
  assert.ok(isLine({ id: 'm1', text: 'hi', at: 1 }));
  for (const bad of [
    { id: 'm1', text: '', at: 1 },
    { id: 'm1', text: 'x'.repeat(2001), at: 1 },
    { id: 'm1', text: 'hi', at: 'now' },
  ]) {
    assert.equal(isLine(bad), false);
  }
});

test(
  'a flood of data-link offers from one person is answered only now and then ' + '(issue 18 finding 33)',
  () => {
    const budget = new OfferBudget(4, 5000);
    // 27 in a second
    const answered = Array.from({ length: 27 }, (_, i) => budget.take('mallory', 1000 + i * 37));
    assert.equal(answered.filter(Boolean).length, 4);
    assert.equal(budget.take('bob', 1000), true); // someone else is not held up
    assert.equal(budget.take('mallory', 1000 + 26 * 37 + 5000), true); // one more every 5 s
    assert.equal(budget.take('mallory', 1000 + 26 * 37 + 5001), false);
    for (let i = 0; i < 300; i += 1) budget.take(`p${i}`, 10_000_000);
    assert.ok(budget.byPeer.size <= 256); // people who stopped are forgotten
    assert.equal(budget.take('p299', 10_000_000), true); // the newest keep their count: 2 of 4 used
    assert.equal(budget.byPeer.get('p299')?.tokens, 2);
  },
);

test('requests do not time out while the other side holds the link (issue 19, 5)', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const requests = new Requests();
  const { promise } = requests.create('message', 10_000, 'no answer');
  let failed = null;
  promise.catch((error) => {
    failed = error;
  });
  requests.hold(true);
  t.mock.timers.tick(60_000);
  await Promise.resolve();
  assert.equal(failed, null);
  assert.equal(requests.size, 1);
  const later = requests.create('message', 10_000, 'no answer either'); // made while held: no clock
  later.promise.catch(() => {});
  requests.hold(false); // they went on: each gets its whole time again
  t.mock.timers.tick(9_999);
  await Promise.resolve();
  assert.equal(failed, null);
  t.mock.timers.tick(1);
  await Promise.resolve();
  assert.equal(failed?.code, 'timeout');
});
