// The verification guard (docs/verification.md), without any view: every connection is
// built with it (a required argument of `Connection`), so no call, data link or future
// role can skip it. It sees each remote description before it is applied, classifies the
// fingerprint against the verified contacts, holds a connection whose device is not the
// one verified under that name or id (nothing of ours reaches it until the user decides),
// runs a call's code exchange, and owns each connection's check (`held`, `released`, the
// code). The views (public/verify/verifyview.js, public/verify/holdwarning.js) read checks and call
// `release`; they install nothing.
//
// Pure: contacts and this device's identity are passed in, so tests/js/connection.test.mjs
// runs it under Node with fake connections.

import { Emitter } from '../core/events.js';
import { CodeExchange, fingerprintOfDer, sdpFingerprint } from './verifycode.js';

/**
 * @typedef {import('./contacts.js').Contact} Contact
 * @typedef {'unverified' | 'verified' | 'mismatch'} CheckState
 * @typedef {{
 *   remote: string, local: string, code: string, words: string[], qr: string,
 *   source: 'transport' | 'sdp', state: CheckState, expected: Contact[], held: boolean,
 *   released: boolean, exchange: CodeExchange | null, failed: string,
 * }} LinkCheck what we know about one connection's identity. `held`: nothing of ours is
 *   sent on it; `failed`: why it has no code (their side broke the exchange's rules)
 * @typedef {{
 *   contactFor(fingerprint: string): Contact | undefined | null,
 *   contactsNamed(name: string): Contact[],
 *   seenFingerprint(peerId: string): string | undefined | null,
 *   noteSeen(peerId: string, fingerprint: string): void,
 * }} ContactBook the verified contacts (public/verify/contacts.js) and what each id showed last
 * @typedef {{
 *   pc: Pick<RTCPeerConnection, 'localDescription' | 'getSenders' | 'sctp'>,
 *   owner: {peerId: string, peerName: string},
 *   hold(on: boolean): Promise<void>,
 *   send(type: string, data: unknown): boolean,
 *   on(type: string, listener: (detail: any) => void): void,
 * }} Guarded what the guard needs of a connection (public/connection/connection.js)
 */

/**
 * The check of a role's current connection (a PeerLink's or DataLink's), or null: idle,
 * or before their description. @param {{connection: {check: LinkCheck | null} | null}} role
 */
export function checkOf(role) {
  return role.connection?.check ?? null;
}

/**
 * The user chose to go on with a role's current connection.
 * @param {{connection: {release(): Promise<void>} | null}} role
 */
export async function release(role) {
  await role.connection?.release();
}

/** Events: `change` (the owner of a connection whose check changed: a PeerLink or DataLink). */
export class Guard extends Emitter {
  /**
   * @param {ContactBook} book
   * @param {() => string} localFingerprint this device's, when the SDP does not say yet
   */
  constructor(book, localFingerprint) {
    super();
    this.book = book;
    this.localFingerprint = localFingerprint;
    /** @type {WeakMap<Guarded, LinkCheck>} per connection: a new one starts unchecked */
    this.checks = new WeakMap();
  }

  /**
   * What a fingerprint means for a person of this name and id: a verified contact, someone
   * new, or not the device that was verified under that name or id.
   * @param {string} fingerprint @param {string} name @param {string} peerId
   * @returns {{state: CheckState, expected: Contact[]}}
   */
  classify(fingerprint, name, peerId) {
    const { book } = this;
    if (book.contactFor(fingerprint)) return { state: 'verified', expected: [] };
    const before = book.seenFingerprint(peerId);
    const expected = [...book.contactsNamed(name)];
    const byId = before && before !== fingerprint ? book.contactFor(before) : null;
    if (byId && !expected.includes(byId)) expected.push(byId);
    return { state: expected.length ? 'mismatch' : 'unverified', expected };
  }

  /** @param {Guarded} connection @returns {LinkCheck | null} */
  checkOf(connection) {
    return this.checks.get(connection) ?? null;
  }

  /** Nothing of ours may reach this connection now. @param {Guarded} connection */
  isHeld(connection) {
    return this.checks.get(connection)?.held ?? false;
  }

  /**
   * Before a remote description is applied: a mismatch holds the connection before DTLS
   * can connect (caller) or before we answer (callee).
   * @param {Guarded} connection @param {string} sdp
   */
  async remote(connection, sdp) {
    const remote = sdpFingerprint(sdp);
    if (!remote) return;
    const known = this.checks.get(connection);
    if (known && known.remote === remote) return;
    const { peerId, peerName } = connection.owner;
    const { state, expected } = this.classify(remote, peerName, peerId);
    const local = sdpFingerprint(connection.pc.localDescription?.sdp) || this.localFingerprint();
    /** @type {LinkCheck} */
    const check = {
      remote,
      local,
      code: '',
      words: [],
      qr: '',
      source: 'sdp',
      state,
      expected,
      held: known?.held ?? false,
      released: false,
      exchange: null,
      failed: '',
    };
    this.checks.set(connection, check);
    if (state === 'mismatch') await this.hold(connection, check);
    this.book.noteSeen(peerId, remote); // what this id shows now: no badge left over from a verified device
    this.fillCode(connection, check);
    this.emit('change', connection.owner);
  }

  /**
   * Connected: read the fingerprint the DTLS transport really uses, where the browser
   * exposes it (Chromium: RTCDtlsTransport.getRemoteCertificates()).
   * @param {Guarded} connection
   */
  async confirm(connection) {
    const check = this.checks.get(connection);
    if (!check) return;
    const { pc, owner } = connection;
    const transport = pc.getSenders().find((s) => s.transport)?.transport || pc.sctp?.transport;
    const certificates = /** @type {any} */ (transport)?.getRemoteCertificates?.() || [];
    check.local = sdpFingerprint(pc.localDescription?.sdp) || check.local;
    if (certificates.length) {
      const remote = await fingerprintOfDer(certificates[0]);
      check.source = 'transport';
      if (remote !== check.remote) {
        // DTLS would normally refuse this; treat it as the strongest sign of trouble.
        Object.assign(check, { remote, ...this.classify(remote, owner.peerName, owner.peerId) });
        if (check.state !== 'verified') check.state = 'mismatch';
        await this.hold(connection, check);
      }
    }
    this.fillCode(connection, check);
    this.book.noteSeen(owner.peerId, check.remote);
    this.emit('change', owner);
  }

  /**
   * The user chose to go on with this connection (or marked its device verified).
   * @param {Guarded} connection
   */
  async release(connection) {
    const check = this.checks.get(connection);
    if (check) {
      check.released = true;
      check.held = false;
    }
    await connection.hold(false);
    this.emit('change', connection.owner);
  }

  /**
   * The device was marked verified now: the check says so (and the hold, if any, ends).
   * @param {Guarded} connection
   */
  async verified(connection) {
    const check = this.checks.get(connection);
    if (!check) return;
    check.state = 'verified';
    check.expected = [];
    this.book.noteSeen(connection.owner.peerId, check.remote);
    if (check.held) await this.release(connection);
    else this.emit('change', connection.owner);
  }

  /** @param {Guarded} connection @param {LinkCheck} check */
  async hold(connection, check) {
    check.held = true;
    await connection.hold(true);
  }

  /**
   * A call's code exchange (docs/verification.md): our commitment when its service
   * channel opens, our nonce once theirs is in, the code once their nonce matches. A
   * connection whose other side breaks the rules gets no code (the sheet says why).
   * @param {Guarded} connection
   */
  exchangeCodes(connection) {
    /** @param {{type: string, data: string}[]} messages */
    const send = (messages) => {
      for (const { type, data } of messages) connection.send(type, data);
    };
    /** @returns {[LinkCheck, CodeExchange] | null} */
    const current = () => {
      const check = this.checks.get(connection);
      if (!check) return null;
      if (!check.local) check.local = sdpFingerprint(connection.pc.localDescription?.sdp) || '';
      if (!check.exchange && check.local) check.exchange = new CodeExchange(check.local);
      return check.exchange ? [check, check.exchange] : null;
    };
    connection.on('service', () => {
      const now = current();
      if (now) now[1].start().then(send);
    });
    connection.on('message', async (/** @type {{type: string, data: string}} */ { type, data }) => {
      if (type !== 'verify-commit' && type !== 'verify-reveal') return;
      const now = current();
      if (!now) return;
      const [check, exchange] = now;
      send(await exchange.receive(type, data, check.remote));
      if (exchange.failed) check.failed = exchange.failed;
      if (!exchange.result && !exchange.failed) return;
      this.fillCode(connection, check);
      this.emit('change', connection.owner);
      // Their nonce came through the DTLS session: its certificate can be read now, if
      // "connected" came before the handshake's end (ICE first).
      if (check.source !== 'transport') await this.confirm(connection);
    });
  }

  /**
   * The code exists once both nonces crossed, and only for the certificate the exchange
   * was checked against.
   * @param {Guarded} connection @param {LinkCheck} check
   */
  fillCode(connection, check) {
    if (!check.local) check.local = sdpFingerprint(connection.pc.localDescription?.sdp) || '';
    const result = check.exchange?.result;
    if (result && !check.failed) Object.assign(check, result);
  }
}
