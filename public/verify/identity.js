// This device's lasting identity (docs/verification.md): one ECDSA P-256 certificate, made
// once with RTCPeerConnection.generateCertificate and kept in IndexedDB, used by every
// RTCPeerConnection this page opens (calls and data links), so the DTLS fingerprint the
// other side sees is the same across calls and reloads.
//
// Browsers cap a certificate's life (Chromium: one year), so it is renewed: a notice warns
// RENEW_WARNING_DAYS before it lapses, and a lapsed one is replaced at start. A new
// certificate is a new fingerprint: people who verified this device verify it again.
// Without IndexedDB (private mode in some browsers, storage blocked) the certificate lasts
// this visit only, and the page says so.

import { Emitter } from '../core/events.js';
import { normalizeFingerprint } from './fingerprint.js';

const DB_NAME = 'lanCall.identity';
const STORE = 'certificates';
const KEY = 'current';
const ASK_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000; // the browser may grant less (Chromium: a year)
export const RENEW_WARNING_DAYS = 30;
const DAY_MS = 24 * 3600 * 1000;

/**
 * @typedef {{
 *   certificate: RTCCertificate, fingerprint: string, expires: number,
 *   lasting: boolean, problem: string,
 * }} Identity `lasting`: kept in IndexedDB; `problem`: why not, for people
 */

/** Events: `change` (Identity): made, loaded or renewed. */
export const identityEvents = new Emitter();

/** @type {Identity | null} */
let current = null;

/** @param {RTCCertificate} certificate */
function fingerprintOf(certificate) {
  const sha = certificate.getFingerprints().find((f) => f.algorithm?.toLowerCase() === 'sha-256');
  return sha?.value ? normalizeFingerprint(sha.value) : '';
}

function generate() {
  return RTCPeerConnection.generateCertificate(
    /** @type {any} */ ({ name: 'ECDSA', namedCurve: 'P-256', expires: ASK_LIFETIME_MS }),
  );
}

/** @returns {Promise<IDBDatabase>} */
function openDb() {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === 'undefined') return reject(new Error('IndexedDB is not available'));
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
  });
}

/**
 * @param {IDBDatabase} db @param {'readonly' | 'readwrite'} mode
 * @param {(store: IDBObjectStore) => IDBRequest} action
 */
function run(db, mode, action) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = action(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = tx.onabort = () => reject(tx.error || request.error);
  });
}

/** @param {RTCCertificate} certificate @param {boolean} lasting @param {string} problem */
function use(certificate, lasting, problem) {
  current = {
    certificate,
    fingerprint: fingerprintOf(certificate),
    expires: certificate.expires,
    lasting,
    problem,
  };
  identityEvents.emit('change', current);
  return current;
}

/** Load this device's certificate, making (and storing) one the first time. @returns {Promise<Identity>} */
async function load() {
  let db;
  try {
    db = await openDb();
  } catch (error) {
    console.warn('identity: no IndexedDB', error);
    return use(
      await generate(),
      false,
      'This browser can’t store this device’s identity, so it changes on every visit: ' +
        'verified contacts will see a new device each time. ' +
        'Allow site storage (or leave private browsing) to keep it.',
    );
  }
  try {
    const stored = /** @type {RTCCertificate | undefined} */ (await run(db, 'readonly', (s) => s.get(KEY)));
    if (stored && stored.expires > Date.now() + DAY_MS) return use(stored, true, '');
    const fresh = await generate();
    await run(db, 'readwrite', (s) => s.put(fresh, KEY));
    return use(fresh, true, '');
  } catch (error) {
    console.warn('identity: could not store the certificate', error);
    return use(
      await generate(),
      false,
      'This device’s identity could not be saved, so it lasts this visit only: ' +
        'verified contacts will see a new device next time.',
    );
  } finally {
    db.close();
  }
}

/** Resolves once this device's certificate is ready (the page waits for it before going online). */
export const identityReady = load();

/** The identity now, or null before `identityReady` resolves. */
export function identity() {
  return current;
}

/** Days until the certificate lapses (rounded down). @param {Identity} id @param {number} [now] */
export function daysLeft(id, now = Date.now()) {
  return Math.floor((id.expires - now) / DAY_MS);
}

/**
 * The configuration every RTCPeerConnection of this page is made with: this device's
 * certificate, so its fingerprint is the lasting one. Data links use it too.
 * @param {RTCIceServer[]} iceServers @param {RTCConfiguration} [extra]
 * @returns {RTCConfiguration}
 */
export function rtcConfiguration(iceServers, extra = {}) {
  const certificate = current?.certificate;
  const usable = certificate && certificate.expires > Date.now();
  return { ...extra, iceServers, ...(usable ? { certificates: [certificate] } : {}) };
}

/** Replace the certificate with a new one (before it lapses): a new fingerprint. */
export async function renewIdentity() {
  const fresh = await generate();
  try {
    const db = await openDb();
    try {
      await run(db, 'readwrite', (s) => s.put(fresh, KEY));
    } finally {
      db.close();
    }
    return use(fresh, true, '');
  } catch {
    return use(fresh, false, current?.problem || 'This device’s identity could not be saved.');
  }
}
