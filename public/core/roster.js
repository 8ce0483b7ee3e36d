// The people listed on this network, as the server tells it (docs/protocol.md §1, `peer`),
// including the one rule that needs memory: after our socket reconnects, the server
// lists everyone again, and whoever it has not listed by RELIST_SETTLE_MS has left.

import { Emitter } from './events.js';

/** @typedef {{id: string, name: string, kind: string, remove?: boolean, inCall?: boolean}} Person */

export const RELIST_SETTLE_MS = 1500;

/** Events: `added` (Person), `changed` (Person: renamed, or listed again), `removed` (Person). */
export class Roster extends Emitter {
  constructor(settleMs = RELIST_SETTLE_MS) {
    super();
    this.settleMs = settleMs;
    /** @type {Map<string, Person>} everyone listed now, by peer id */
    this.people = new Map();
    /** @type {Set<string> | null} people not yet listed again after a reconnect */
    this.unlisted = null;
    this.settleTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);
  }

  /** @param {string} id */
  get(id) {
    return this.people.get(id);
  }

  get size() {
    return this.people.size;
  }

  /**
   * A `peer` message: someone joined, was renamed, was listed again, joined or left a
   * call (`inCall`, docs/protocol.md §8), or left.
   * @param {{id: string, name?: unknown, kind?: unknown, remove?: unknown, inCall?: unknown}} data
   */
  listed(data) {
    this.unlisted?.delete(data.id);
    if (data.remove) return this.remove(data.id);
    /** @type {Person} */
    const person = {
      id: data.id,
      name: String(data.name ?? ''),
      kind: data.kind === 'bot' ? 'bot' : 'browser',
    };
    if (data.inCall === true) person.inCall = true;
    const known = this.people.has(person.id);
    this.people.set(person.id, person);
    this.emit(known ? 'changed' : 'added', person);
  }

  /** Someone is gone (they left, or the server no longer knows them). @param {string} id */
  remove(id) {
    const person = this.people.get(id);
    if (!person) return;
    this.people.delete(id);
    this.emit('removed', { ...person, remove: true });
  }

  /**
   * Our socket is back (a resume or a fresh join): the server lists everyone it still
   * has; whoever is not listed again within the settle time is removed.
   */
  reconnected() {
    clearTimeout(this.settleTimer);
    const pending = (this.unlisted = new Set(this.people.keys()));
    this.settleTimer = setTimeout(() => {
      if (this.unlisted !== pending) return;
      this.unlisted = null;
      for (const id of pending) this.remove(id);
    }, this.settleMs);
  }
}
