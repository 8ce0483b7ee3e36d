// Pure rules of a group call (docs/protocol.md §8), kept free of the DOM so Node tests
// them: how much video each sender may send per remote member, who is the active
// speaker, and the words for lists of names.

/**
 * @typedef {{maxBitrate: number | undefined, maxHeight: number | undefined}} VideoBudget
 * undefined: no limit (the browser's own congestion control decides, as in a 1:1 call)
 */

/**
 * The per-peer upstream video budget in a mesh with `remotes` other members. Every
 * member encodes and sends one stream per remote member, so a phone in a 6-person call
 * encodes five streams: about 1.75 Mbps up in all at 350 kbps / 360p each, which a phone
 * on Wi-Fi sends and encodes without dropping frames (docs/architecture.md).
 * @param {number} remotes
 * @returns {VideoBudget}
 */
export function videoBudget(remotes) {
  if (remotes <= 1) return { maxBitrate: undefined, maxHeight: undefined };
  if (remotes === 2) return { maxBitrate: 800_000, maxHeight: 540 };
  if (remotes === 3) return { maxBitrate: 600_000, maxHeight: 480 };
  return { maxBitrate: 350_000, maxHeight: 360 };
}

/**
 * `scaleResolutionDownBy` that brings a track of `height` pixels to at most `maxHeight`
 * (1: send as captured).
 * @param {number} height @param {number | undefined} maxHeight
 */
export function scaleFor(height, maxHeight) {
  if (!maxHeight || !height || height <= maxHeight) return 1;
  return height / maxHeight;
}

export const SPEAKING_LEVEL = 0.02; // audioLevel (0..1) under this is silence or room noise
const TAKE_OVER = 1.5; // a new speaker must be this much louder than the current one

/**
 * The active speaker: the loudest member above SPEAKING_LEVEL; the current one keeps
 * the highlight unless someone else is clearly louder (no flicker between two voices),
 * and nobody is highlighted when everyone is quiet.
 * @param {Map<string, number>} levels audio level per member id, 0..1
 * @param {string | null} current
 * @returns {string | null}
 */
export function pickSpeaker(levels, current) {
  let loudest = null;
  let top = 0;
  for (const [id, level] of levels) {
    if (level > top) {
      top = level;
      loudest = id;
    }
  }
  if (top < SPEAKING_LEVEL) return null;
  const held = current !== null ? (levels.get(current) ?? 0) : 0;
  if (current !== null && held >= SPEAKING_LEVEL && top < held * TAKE_OVER) return current;
  return loudest;
}

/** "Ann", "Ann and Bob", "Ann, Bob and Cy". @param {string[]} names */
export function listNames(names) {
  if (names.length <= 1) return names[0] || '';
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** "Ann is typing…", "Ann and Bob are typing…", '' when nobody is. @param {string[]} names */
export function typingText(names) {
  if (!names.length) return '';
  if (names.length > 3) return 'Several people are typing…';
  return `${listNames(names)} ${names.length === 1 ? 'is' : 'are'} typing…`;
}

/**
 * Whether a `call` message that lists us may become our call (issue 18, finding 22: a
 * call the person did not start or accept must never get their camera). It may when it
 * is the call we are in, the one we asked to join, or the 1:1 call we started or accepted
 * with its one other member; never a call that appears around an idle person.
 * @param {{id: string, members: string[], me: string, group: string | null, joining: string | null,
 *   consented: (peerId: string) => boolean}} seen
 *   `consented`: we dialled that person, or answered their ring, and the call is on
 */
export function mayAdoptCall({ id, members, me, group, joining, consented }) {
  if (!members.includes(me)) return false;
  if (id === group || id === joining) return true;
  const others = members.filter((member) => member !== me);
  return group === null && others.length === 1 && consented(others[0]);
}

/**
 * A balanced grid (issue 19, 8: four people on a laptop got tall slices of 16:9 video, six
 * left an empty band): every tile the same size and shape, as large as `count` of them fit
 * in `width` x `height` with `gap` between, rows centred (a short last row too). Tiles
 * are 16:9 in a landscape area and 3:4 in a portrait one (a phone held upright).
 * @param {number} count @param {number} width @param {number} height @param {number} gap
 * @returns {{cols: number, rows: number, tileWidth: number, tileHeight: number}}
 */
export function balancedGrid(count, width, height, gap) {
  const aspect = width >= height ? 16 / 9 : 3 / 4;
  let best = { cols: 1, rows: Math.max(1, count), tileWidth: 0, tileHeight: 0 };
  for (let cols = 1; cols <= Math.max(1, count); cols += 1) {
    const rows = Math.ceil(count / cols);
    const cellWidth = (width - gap * (cols - 1)) / cols;
    const cellHeight = (height - gap * (rows - 1)) / rows;
    const tileWidth = Math.floor(Math.max(0, Math.min(cellWidth, cellHeight * aspect)));
    if (tileWidth > best.tileWidth)
      best = { cols, rows, tileWidth, tileHeight: Math.floor(tileWidth / aspect) };
  }
  return best;
}
