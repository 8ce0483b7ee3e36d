// The peer link's transition table, without a browser or a call (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ACTIVE, LinkState, TRANSITIONS } from '../../public/connection/linkstate.js';

const STATES = ['idle', 'calling', 'ringing', 'connecting', 'connected', 'reconnecting', 'ended'];

test('every state is in the table and every target is a state', () => {
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...STATES].sort());
  for (const [from, events] of Object.entries(TRANSITIONS)) {
    for (const to of Object.values(events)) assert.ok(STATES.includes(to), `${from} -> ${to}`);
  }
});

test('every state is reachable from idle, and idle from every state', () => {
  const reach = (start) => {
    const seen = new Set([start]);
    const todo = [start];
    while (todo.length)
      for (const to of Object.values(TRANSITIONS[todo.pop()]))
        if (!seen.has(to)) (seen.add(to), todo.push(to));
    return seen;
  };
  assert.deepEqual([...reach('idle')].sort(), [...STATES].sort());
  for (const state of STATES) assert.ok(reach(state).has('idle'), `${state} never returns to idle`);
});

test('an outgoing call: dial, answered, connected, lost, connected, end, reset', () => {
  const link = new LinkState();
  const seen = [];
  link.on('state', ({ from, to, event }) => seen.push(`${from}-${event}->${to}`));
  for (const event of ['dial', 'answered', 'connected', 'lost', 'connected'])
    assert.ok(link.fire(event), event);
  assert.ok(link.active && link.is('connected'));
  assert.ok(link.fire('end', 'hangup'));
  assert.equal(link.reason, 'hangup');
  assert.ok(!link.active);
  assert.ok(link.fire('reset'));
  assert.equal(link.state, 'idle');
  assert.equal(link.reason, '');
  assert.equal(seen.length, 7);
  assert.equal(seen[0], 'idle-dial->calling');
});

test('events the state does not list are refused and change nothing', () => {
  const link = new LinkState();
  assert.equal(link.fire('accept'), false); // nothing rings
  assert.equal(link.fire('end', 'x'), false); // nothing to end
  link.fire('offered');
  assert.equal(link.fire('answered'), false); // an answer is for the caller
  assert.ok(link.fire('accept'));
  assert.equal(link.fire('accept'), false); // a second accept
  link.fire('end', 'declined');
  for (const event of ['connected', 'lost', 'end', 'dial', 'offered'])
    assert.equal(link.fire(event), false, event);
  assert.equal(link.reason, 'declined');
});

test('a data-only link connects without ringing', () => {
  const link = new LinkState();
  assert.ok(link.fire('link'));
  assert.equal(link.state, 'connecting');
  assert.ok(link.can('connected') && !link.can('accept'));
});

test('ACTIVE is every state but idle and ended', () => {
  assert.deepEqual([...ACTIVE].sort(), STATES.filter((s) => s !== 'idle' && s !== 'ended').sort());
});
