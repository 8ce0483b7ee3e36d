// The /rtc wire vocabulary (docs/protocol.md), the browser's side of server/protocol.py:
// message types, the fields each relay carries, error codes, capabilities, space codes,
// and where an incoming frame goes in this client. No DOM, no state: imported by
// signalling and by each role. tests/unit/test_client_protocol.py keeps it equal to the
// server's tables.

/**
 * @typedef {'offer' | 'accept' | 'reject' | 'icecandidate' | 'hangup' | 'ringing' | 'space-move'} RelayType
 */
/** @typedef {'invite' | 'join' | 'leave-call'} CallRequest */
/** @typedef {RelayType | CallRequest | 'identify' | 'leave' | 'ping'} ClientType what a client may send */
/**
 * @typedef {'ready' | 'peer' | 'error' | 'pong' | 'call' | 'invite'} ServerType what the server itself sends
 */

/**
 * The fields each relay carries besides its target; the server drops any other (§2).
 * @type {Readonly<Record<RelayType, readonly string[]>>}
 */
export const RELAY_FIELDS = Object.freeze({
  offer: ['type', 'sdp', 'call', 'link', 'rejoin'],
  accept: ['type', 'sdp', 'call', 'link'],
  reject: ['reason', 'call', 'link'],
  icecandidate: ['candidate', 'call', 'link'],
  hangup: ['reason', 'call', 'link'],
  ringing: ['call'],
  'space-move': ['code', 'removed'],
});
/** @type {readonly RelayType[]} */
export const RELAY_TYPES = /** @type {RelayType[]} */ (Object.keys(RELAY_FIELDS));
/** @type {readonly CallRequest[]} group-call requests the server decides (§8) */
export const CALL_REQUESTS = ['invite', 'join', 'leave-call'];
/** @type {readonly ClientType[]} */
export const CLIENT_TYPES = [...RELAY_TYPES, ...CALL_REQUESTS, 'identify', 'leave', 'ping'];
/** @type {readonly ServerType[]} */
export const SERVER_TYPES = ['ready', 'peer', 'error', 'pong', 'call', 'invite'];

/** Error codes (§3). */
export const ERROR = Object.freeze({
  BAD_JSON: 'bad-json',
  BAD_MESSAGE: 'bad-message',
  UNKNOWN_TYPE: 'unknown-type',
  NOT_IDENTIFIED: 'not-identified',
  UNKNOWN_PEER: 'unknown-peer',
  RATE_LIMITED: 'rate-limited',
  BAD_NAME: 'bad-name',
  PEER_AWAY: 'peer-away', // listed, socket gone: the message is held for its return
  UNDELIVERED: 'undelivered', // could not be held either: dropped
  NOT_IN_CALL: 'not-in-call',
  NOT_INVITED: 'not-invited',
  CALL_FULL: 'call-full',
  UNSUPPORTED: 'unsupported',
  SPACE_REQUIRED: 'space-required',
});

/** Capabilities this client announces in `identify`: group calls (§8), data links (§9). */
export const CAPS = Object.freeze({ GROUP: 'group', DATA: 'data' });
/** A relay's `link` value for a data-only link (messages and files, never a call). */
export const DATA_LINK = 'data';
/** Space codes (§11): no 0/O or 1/I/L, compared without case. */
export const SPACE = Object.freeze({
  ALPHABET: '23456789ABCDEFGHJKMNPQRSTUVWXYZ',
  MIN_LENGTH: 4,
  MAX_LENGTH: 16,
});
export const MAX_REASON_LENGTH = 64;

/** @typedef {'call' | 'data' | 'space'} RelayRole a part of this client that takes relayed frames */
/** @typedef {RelayRole | 'name'} Role a part of this client that answers frames or errors */

/**
 * Where a relayed frame (or a server `call`/`invite`) goes: a data link's relays to the
 * data links, a space move to spaces, everything else to calls.
 * @param {string} type @param {{link?: unknown}} data @returns {RelayRole}
 */
export function relayRole(type, data) {
  if (data.link === DATA_LINK) return 'data';
  if (type === 'space-move') return 'space';
  return 'call';
}

/**
 * Which roles may be concerned by a server `error`, in the order to ask them, by the type
 * of the message it refuses (`ref`): the first that claims it handles it, except that the
 * data links, asked first about a refused relay (it names no `link`; they know what they
 * are opening), leave it to calls too: someone away is away for a call as well.
 * @param {{ref?: string}} error @returns {Role[]}
 */
export function errorRoles({ ref }) {
  if (ref === 'identify') return ['space', 'name'];
  if (ref === 'space-move') return ['space'];
  if (ref === 'invite' || ref === 'join' || ref === 'leave-call') return ['call'];
  return ['data', 'call'];
}
