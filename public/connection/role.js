// What a call (public/calls/peerlink.js) and a data link (public/data/datalinks.js) have in
// common as owners of a connection: the current one (null while idle) and what is read
// through it, and the role's own named timers.

import { Emitter } from '../core/events.js';
import { Timers } from './timers.js';

export class Role extends Emitter {
  constructor() {
    super();
    /** @type {import('./connection.js').Connection | null} the current one, null while idle */
    this.connection = null;
    this.timers = new Timers();
  }

  /** The current connection's RTCPeerConnection (stats, tests), null while idle. */
  get pc() {
    return this.connection?.pc ?? null;
  }

  /** The current connection's data channels, null while idle. */
  get channels() {
    return this.connection?.channels ?? null;
  }

  /** Verification holds the current connection: nothing of ours is sent (public/verify/guard.js). */
  get held() {
    return this.connection?.held ?? false;
  }
}
