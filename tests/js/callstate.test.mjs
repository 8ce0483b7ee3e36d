// The call-level transition table (public/calls/callstate.js), without a browser or a call
// (node --test): the table its header documents, every transition, the refusals, and the
// data each state carries.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { CallState, TRANSITIONS } from '../../public/calls/callstate.js';

const STATES = ['idle', 'invitation', 'joining', 'member', 'waiting', 'leaving'];
const EVENTS = [
  'invited',
  'accept',
  'dismiss',
  'join',
  'join-failed',
  'listed',
  'invite',
  'uninvite',
  'wait',
  'unwait',
  'leave',
  'left',
  'over',
];
const INVITATION = {
  from: 'ann',
  name: 'Ann',
  call: 'c1',
  members: ['ann', 'bob'],
  text: 't',
  others: 'Bob',
  timer: 0,
};
const LISTED = { id: 'c1', members: ['me', 'ann'] };

/** The header comment: its lists of states and events, as the module's reader sees them. */
function documented() {
  const source = readFileSync(new URL('../../public/calls/callstate.js', import.meta.url), 'utf8');
  const header = source.split('\nimport')[0];
  const section = (title) => header.split(`// ${title}`)[1].split('\n//\n')[0].split('\n');
  const states = section('States')
    .map((line) => /^\/\/ {3}([a-z]+) {2,}/.exec(line)?.[1])
    .filter(Boolean);
  /** @type {Record<string, Record<string, string>>} */
  const table = Object.fromEntries(states.map((state) => [state, {}]));
  for (const line of section('Events')) {
    const row = /^\/\/ {3}([a-z-]+) +([a-z|]+) -> ([a-z]+)\s/.exec(line);
    if (!row) continue;
    const [, event, froms, to] = row;
    for (const from of froms.split('|')) {
      assert.ok(!(event in table[from]), `${from} --${event}--> documented twice`);
      table[from][event] = to === 'same' ? from : to;
    }
  }
  return { states, table };
}

/** A machine in `state`, with data: a call c1 with Ann, Dee invited, Bob waiting. */
function machineIn(state) {
  const machine = new CallState();
  const steps = {
    idle: [],
    invitation: [['invited', INVITATION]],
    joining: [['join', 'c1', 'attempt']],
    member: [
      ['listed', LISTED],
      ['invite', 'dee', 'Dee'],
    ],
    waiting: [
      ['listed', LISTED],
      ['invite', 'dee', 'Dee'],
      ['wait', 'bob'],
    ],
    leaving: [['listed', LISTED], ['leave']],
  }[state];
  for (const [event, ...args] of steps) assert.ok(machine.fire(event, ...args), `${event} towards ${state}`);
  assert.equal(machine.state, state);
  return machine;
}

/** Data each event needs, valid in every state that lists it. */
const ARGS = {
  invited: [INVITATION],
  join: ['c1', 'attempt'],
  listed: [LISTED],
  invite: ['cy', 'Cy'],
  uninvite: ['dee'],
  wait: ['bob'],
};

/** Everything a machine holds, to see that a refused event changed nothing. */
const snapshot = (machine) => ({
  state: machine.state,
  group: machine.group,
  invitation: machine.invitation,
  joining: machine.joining,
  from: machine.from,
  invites: [...machine.invites],
  waiting: machine.waiting,
});

test('the header documents exactly the table', () => {
  const { states, table } = documented();
  assert.deepEqual(states, STATES);
  assert.deepEqual(table, JSON.parse(JSON.stringify(TRANSITIONS)));
  assert.ok(Object.isFrozen(TRANSITIONS));
});

test('every state is in the table, every event and target is known, and idle is always reachable', () => {
  assert.deepEqual(Object.keys(TRANSITIONS), STATES);
  const used = new Set();
  for (const [from, events] of Object.entries(TRANSITIONS)) {
    for (const [event, to] of Object.entries(events)) {
      used.add(event);
      assert.ok(STATES.includes(to), `${from} -> ${to}`);
    }
  }
  assert.deepEqual([...used].sort(), [...EVENTS].sort());
  const reach = (start) => {
    const seen = new Set([start]);
    const todo = [start];
    while (todo.length) {
      for (const to of Object.values(TRANSITIONS[todo.pop()]))
        if (!seen.has(to)) (seen.add(to), todo.push(to));
    }
    return seen;
  };
  assert.deepEqual([...reach('idle')].sort(), [...STATES].sort());
  for (const state of STATES) assert.ok(reach(state).has('idle'), `${state} never returns to idle`);
});

test('every listed transition goes where the table says, and says so', () => {
  for (const [from, events] of Object.entries(TRANSITIONS)) {
    for (const [event, to] of Object.entries(events)) {
      const machine = machineIn(from);
      const seen = [];
      machine.on('state', (change) => seen.push(change));
      assert.ok(machine.can(event), `${from} can ${event}`);
      assert.equal(machine.fire(event, ...(ARGS[event] || [])), true, `${from} --${event}-->`);
      assert.equal(machine.state, to, `${from} --${event}--> ${to}`);
      assert.ok(machine.is(to));
      assert.deepEqual(seen, [{ from, to, event }]);
    }
  }
});

test('events a state does not list are refused and change nothing', () => {
  for (const state of STATES) {
    for (const event of EVENTS.filter((e) => !(e in TRANSITIONS[state]))) {
      const machine = machineIn(state);
      const before = snapshot(machine);
      let told = false;
      machine.on('state', () => (told = true));
      assert.ok(!machine.can(event));
      assert.equal(machine.fire(event, ...(ARGS[event] || [])), false, `${state} refuses ${event}`);
      assert.deepEqual(snapshot(machine), before);
      assert.equal(told, false);
    }
  }
});

test('idle holds nothing', () => {
  const machine = new CallState();
  assert.equal(machine.state, 'idle');
  assert.deepEqual(snapshot(machine), {
    state: 'idle',
    group: null,
    invitation: null,
    joining: null,
    from: null,
    invites: [],
    waiting: null,
  });
});

test('an invitation: carried while it rings; accepting joins its call, dismissing forgets it', () => {
  const machine = machineIn('invitation');
  assert.deepEqual(machine.invitation, INVITATION);
  assert.ok(Object.isFrozen(machine.invitation));
  assert.equal(machine.group, null);
  assert.ok(machine.fire('accept'));
  assert.equal(machine.joining, 'c1');
  assert.equal(machine.from, null); // nobody was being called
  assert.equal(machine.invitation, null);
  const dismissed = machineIn('invitation');
  assert.ok(dismissed.fire('dismiss'));
  assert.deepEqual(snapshot(dismissed), snapshot(new CallState()));
});

test('joining: the call id and the attempt that led there, until the call lists us or refuses', () => {
  const machine = machineIn('joining');
  assert.equal(machine.joining, 'c1');
  assert.equal(machine.from, 'attempt');
  // Another call's list is not the answer to our join.
  assert.equal(machine.fire('listed', { id: 'c2', members: ['me', 'cy'] }), false);
  assert.equal(machine.state, 'joining');
  assert.ok(machine.fire('listed', { id: 'c1', members: ['me', 'ann', 'bob'] }));
  assert.deepEqual(machine.group, { id: 'c1', members: ['me', 'ann', 'bob'] });
  assert.equal(machine.joining, null);
  assert.equal(machine.from, null);
  const refused = machineIn('joining');
  assert.ok(refused.fire('join-failed'));
  assert.deepEqual(snapshot(refused), snapshot(new CallState()));
});

test('a member: the group, held as a copy nobody can change; a list for another call is refused', () => {
  const machine = new CallState();
  const members = ['me', 'ann'];
  assert.ok(machine.fire('listed', { id: 'c1', members }));
  members.push('mallory');
  assert.deepEqual(machine.group, { id: 'c1', members: ['me', 'ann'] });
  assert.ok(Object.isFrozen(machine.group) && Object.isFrozen(machine.group.members));
  assert.equal(machine.fire('listed', { id: 'c2', members: ['me', 'cy'] }), false);
  assert.equal(machine.group.id, 'c1');
  assert.ok(machine.fire('listed', { id: 'c1', members: ['me', 'ann', 'bob'] }));
  assert.deepEqual(machine.group.members, ['me', 'ann', 'bob']);
});

test('invitations out: oldest first, not to members or twice, over when answered or listed', () => {
  const machine = new CallState();
  assert.ok(machine.fire('listed', LISTED));
  assert.ok(machine.fire('invite', 'cy', 'Cy'));
  assert.ok(machine.fire('invite', 'dee', 'Dee'));
  assert.ok(machine.fire('invite', 'eve', 'Eve'));
  assert.deepEqual(
    [...machine.invites],
    [
      ['cy', 'Cy'],
      ['dee', 'Dee'],
      ['eve', 'Eve'],
    ],
  );
  assert.equal(machine.fire('invite', 'ann', 'Ann'), false); // a member already
  assert.equal(machine.fire('invite', 'cy', 'Cy'), false); // invited already: keeps its place
  assert.equal(machine.fire('uninvite', 'zed'), false); // never invited
  assert.ok(machine.fire('uninvite', 'dee'));
  assert.deepEqual([...machine.invites.keys()], ['cy', 'eve']);
  // Cy joins: the call lists them, and their invitation is over.
  assert.ok(machine.fire('listed', { id: 'c1', members: ['me', 'ann', 'cy'] }));
  assert.deepEqual([...machine.invites.keys()], ['eve']);
  assert.equal(machine.state, 'member');
});

test('call waiting: the caller is held with the group and the invitations, and let go', () => {
  const machine = machineIn('waiting');
  assert.equal(machine.waiting, 'bob');
  assert.equal(machine.group?.id, 'c1');
  assert.deepEqual([...machine.invites.keys()], ['dee']);
  // The call goes on meanwhile: invitations and new members do not end the wait.
  assert.ok(machine.fire('invite', 'cy', 'Cy'));
  assert.ok(machine.fire('listed', { id: 'c1', members: ['me', 'ann', 'dee'] }));
  assert.equal(machine.state, 'waiting');
  assert.equal(machine.waiting, 'bob');
  assert.deepEqual([...machine.invites.keys()], ['cy']);
  assert.equal(machine.fire('wait', 'fay'), false); // one caller waits at a time
  assert.ok(machine.fire('unwait'));
  assert.equal(machine.waiting, null);
  assert.deepEqual(machine.group, { id: 'c1', members: ['me', 'ann', 'dee'] });
  assert.deepEqual([...machine.invites.keys()], ['cy']);
});

test('leaving keeps the call being left and nothing else; left and over forget it all', () => {
  const machine = machineIn('waiting');
  assert.ok(machine.fire('leave'));
  assert.deepEqual(machine.group, LISTED);
  assert.equal(machine.waiting, null);
  assert.deepEqual([...machine.invites], []);
  assert.ok(machine.fire('left'));
  assert.deepEqual(snapshot(machine), snapshot(new CallState()));
  // Two links up before the server lists their call: leaving holds no call.
  const early = new CallState();
  assert.ok(early.fire('leave'));
  assert.equal(early.group, null);
  for (const state of ['member', 'waiting']) {
    const over = machineIn(state);
    assert.ok(over.fire('over'));
    assert.deepEqual(snapshot(over), snapshot(new CallState()));
  }
});

test('the data held is frozen: only events change it', () => {
  const machine = machineIn('waiting');
  assert.ok(Object.isFrozen(machine.held));
  assert.throws(() => {
    machine.held.waiting = 'mallory';
  }, TypeError);
  assert.equal(machine.waiting, 'bob');
});
