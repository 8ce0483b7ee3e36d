// The people list and its relist-after-reconnect rule, with fake timers (node --test).
import assert from 'node:assert/strict';
import { beforeEach, mock, test } from 'node:test';

import { RELIST_SETTLE_MS, Roster } from '../../public/core/roster.js';

beforeEach(() => {
  mock.timers.reset();
  mock.timers.enable({ apis: ['setTimeout'] });
});

/** A roster that records its events as "event:id:name". */
function recorded() {
  const roster = new Roster();
  const events = [];
  for (const type of ['added', 'changed', 'removed']) {
    roster.on(type, (person) => events.push(`${type}:${person.id}:${person.name}`));
  }
  return { roster, events };
}

test('join, rename and leave are told apart; a bot stays a bot; names are text', () => {
  const { roster, events } = recorded();
  roster.listed({ id: 'a', name: 'Ann' });
  roster.listed({ id: 'e', name: 'Echo test', kind: 'bot' });
  roster.listed({ id: 'a', name: 'Anna', kind: 'alien' });
  roster.listed({ id: 'n', name: 42 });
  roster.listed({ id: 'a', remove: true });
  roster.listed({ id: 'a', remove: true }); // already gone: nothing to tell
  assert.deepEqual(events, [
    'added:a:Ann',
    'added:e:Echo test',
    'changed:a:Anna',
    'added:n:42',
    'removed:a:Anna',
  ]);
  assert.equal(roster.get('e').kind, 'bot');
  assert.equal(roster.get('n').kind, 'browser');
  assert.equal(roster.size, 2);
});

test('a removal carries remove: true, for a call with that person', () => {
  const roster = new Roster();
  let removed = null;
  roster.on('removed', (person) => (removed = person));
  roster.listed({ id: 'b', name: 'Bob' });
  roster.remove('b');
  assert.deepEqual(removed, { id: 'b', name: 'Bob', kind: 'browser', remove: true });
});

test('after a reconnect, whoever is not listed again within the settle time is removed', () => {
  const { roster, events } = recorded();
  for (const id of ['a', 'b', 'c']) roster.listed({ id, name: id.toUpperCase() });
  events.length = 0;
  roster.reconnected();
  roster.listed({ id: 'a', name: 'A' }); // listed again
  roster.listed({ id: 'd', name: 'D' }); // new since
  mock.timers.tick(RELIST_SETTLE_MS - 1);
  assert.deepEqual(events, ['changed:a:A', 'added:d:D']); // nobody removed early
  roster.listed({ id: 'c', name: 'C' }); // just in time
  mock.timers.tick(1);
  assert.deepEqual(events.slice(3), ['removed:b:B']);
  assert.deepEqual([...roster.people.keys()].sort(), ['a', 'c', 'd']);
});

test('a second reconnect restarts the wait: only its own relist counts', () => {
  const { roster, events } = recorded();
  roster.listed({ id: 'a', name: 'A' });
  roster.listed({ id: 'b', name: 'B' });
  events.length = 0;
  roster.reconnected();
  mock.timers.tick(RELIST_SETTLE_MS - 100);
  roster.reconnected(); // dropped again before the first relist settled
  mock.timers.tick(100);
  assert.deepEqual(events, []); // the first wait no longer decides
  roster.listed({ id: 'a', name: 'A' });
  mock.timers.tick(RELIST_SETTLE_MS);
  assert.deepEqual(events, ['changed:a:A', 'removed:b:B']);
});

test('someone who leaves during the settle time is removed once', () => {
  const { roster, events } = recorded();
  roster.listed({ id: 'a', name: 'A' });
  events.length = 0;
  roster.reconnected();
  roster.listed({ id: 'a', remove: true });
  mock.timers.tick(RELIST_SETTLE_MS);
  assert.deepEqual(events, ['removed:a:A']);
});
