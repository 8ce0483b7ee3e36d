// Verified contacts (docs/verification.md): the people this device has verified, each as
// {name, fingerprint, verifiedAt}, kept in IndexedDB on this device only. Nothing here is
// ever sent to the server or to anyone.
//
// `isVerified(personOrFingerprint)` and `contactEvents` ('change') are for every view that
// shows a person: the people list, calls, messages and file offers. A person (by peer id)
// counts as verified once a link with them this visit has shown a verified fingerprint
// (peer ids change between visits and names are anyone's, so neither alone proves anything).

import { Emitter } from '../core/events.js';
import { nameKey } from '../core/names.js';
import { normalizeFingerprint } from './fingerprint.js';

const DB_NAME = 'lanCall.contacts';
const STORE = 'contacts';

/** @typedef {{fingerprint: string, name: string, verifiedAt: number}} Contact */

/** Events: `change` (a contact was added or removed, or a person's fingerprint became known). */
export const contactEvents = new Emitter();

/** @type {Map<string, Contact>} by fingerprint */
const byFingerprint = new Map();
/** @type {Map<string, string>} peer id -> the fingerprint their links showed this visit */
const seen = new Map();
/** @type {Set<string>} peer ids whose device a link checked since they were last listed */
const checked = new Set();
/** Why contacts last this visit only, or ''. */
export let storageProblem = '';

/** @returns {Promise<IDBDatabase>} */
function openDb() {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === 'undefined') return reject(new Error('IndexedDB is not available'));
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'fingerprint' });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
  });
}

/** @param {'readonly' | 'readwrite'} mode @param {(store: IDBObjectStore) => IDBRequest} action */
async function run(mode, action) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = tx.onabort = () => reject(tx.error || request.error);
    });
  } finally {
    db.close();
  }
}

async function load() {
  try {
    const all = /** @type {Contact[]} */ (await run('readonly', (s) => s.getAll()));
    for (const contact of all) byFingerprint.set(contact.fingerprint, contact);
  } catch (error) {
    console.warn('contacts: no IndexedDB', error);
    storageProblem = 'This browser can’t store verified contacts, so they last this visit only.';
  }
  contactEvents.emit('change');
}

/** Resolves once the stored contacts are loaded. */
export const contactsReady = load();

/** Every verified contact, by name. */
export function contacts() {
  return [...byFingerprint.values()].sort(
    (a, b) => a.name.localeCompare(b.name) || a.verifiedAt - b.verifiedAt,
  );
}

/** @param {string} fingerprint */
export function contactFor(fingerprint) {
  return byFingerprint.get(fingerprint) || null;
}

/** Contacts verified under this name (compared as the lobby compares names). @param {string} name */
export function contactsNamed(name) {
  const key = nameKey(name);
  return contacts().filter((contact) => nameKey(contact.name) === key);
}

/**
 * A fingerprint ("AB:CD:…"), a peer id, or a person ({id}): verified on this device?
 * A person is verified once a link with them this visit showed a verified fingerprint.
 * @param {string | {id: string} | null | undefined} personOrFingerprint
 */
export function isVerified(personOrFingerprint) {
  if (!personOrFingerprint) return false;
  const value = typeof personOrFingerprint === 'string' ? personOrFingerprint : personOrFingerprint.id;
  if (value.includes(':')) return byFingerprint.has(value);
  // A person: only while a link since they were last listed showed a verified device. A
  // reload (a new identity, if the site's data was cleared) lists them anew: no tick until
  // a link has checked the device again (issue 19, 4: "Bob ✓" on a device that failed).
  const fingerprint = seen.get(value);
  return Boolean(fingerprint && checked.has(value) && byFingerprint.has(fingerprint));
}

/**
 * They left, or reloaded (listed anew): their tick waits for a link that checks the device.
 * @param {string} peerId
 */
export function unlisted(peerId) {
  if (checked.delete(peerId)) contactEvents.emit('change');
}

/** The fingerprint a link with this person showed this visit, or undefined. @param {string} peerId */
export function seenFingerprint(peerId) {
  return seen.get(peerId);
}

/**
 * A link with this person showed this fingerprint (public/verify/guard.js).
 * @param {string} peerId @param {string} fingerprint
 */
export function noteSeen(peerId, fingerprint) {
  if (seen.get(peerId) === fingerprint && checked.has(peerId)) return;
  seen.set(peerId, fingerprint);
  checked.add(peerId);
  contactEvents.emit('change');
}

/**
 * Verify this fingerprint as this person. `replaces`: fingerprints of the same person's
 * old device, forgotten now ("It's a new device").
 * @param {string} name @param {string} fingerprint @param {string[]} [replaces]
 */
export async function markVerified(name, fingerprint, replaces = []) {
  /** @type {Contact} */
  const contact = { name, fingerprint: normalizeFingerprint(fingerprint), verifiedAt: Date.now() };
  for (const old of replaces) byFingerprint.delete(old);
  byFingerprint.set(contact.fingerprint, contact);
  contactEvents.emit('change');
  if (storageProblem) return contact;
  try {
    await run('readwrite', (s) => {
      for (const old of replaces) s.delete(old);
      return s.put(contact);
    });
  } catch (error) {
    console.warn('contacts: could not save', error);
  }
  return contact;
}

/** Remove a contact. @param {string} fingerprint */
export async function forget(fingerprint) {
  if (!byFingerprint.delete(fingerprint)) return;
  contactEvents.emit('change');
  if (storageProblem) return;
  try {
    await run('readwrite', (s) => s.delete(fingerprint));
  } catch (error) {
    console.warn('contacts: could not remove', error);
  }
}

/** The first pairs of a fingerprint, for people to tell two apart. @param {string} fingerprint */
export function shortFingerprint(fingerprint) {
  return fingerprint.split(':').slice(0, 6).join(':');
}

/** A "verified" mark to put after a name. */
export function verifiedBadge() {
  const badge = document.createElement('span');
  badge.className = 'verified-badge';
  badge.dataset.testid = 'verified-badge';
  badge.title = 'Verified contact';
  badge.textContent = '✓';
  const words = document.createElement('span');
  words.className = 'visually-hidden';
  words.textContent = ' (verified)';
  badge.append(words);
  return badge;
}
