// Display names: a meaningful default ("Chrome on Android") and the remembered choice.

const STORAGE_KEY = 'lanCall.name';

/** Chromium brands worth naming, most specific first (every Chromium also says "Chromium"). */
/** @type {[string, string][]} */
const BRANDS = [
  ['Microsoft Edge', 'Edge'],
  ['Opera', 'Opera'],
  ['Samsung Internet', 'Samsung Internet'],
  ['Brave', 'Brave'],
  ['Vivaldi', 'Vivaldi'],
  ['Google Chrome', 'Chrome'],
  ['Chromium', 'Chromium'],
];

/** User-agent patterns, most specific first: Edge and Opera also say "Chrome". */
/** @type {[RegExp, string][]} */
const BROWSERS = [
  [/EdgA?\/|EdgiOS\//, 'Edge'],
  [/OPR\/|OPiOS\//, 'Opera'],
  [/SamsungBrowser\//, 'Samsung Internet'],
  [/Firefox\/|FxiOS\//, 'Firefox'],
  [/CriOS\/|Chrome\//, 'Chrome'],
  [/Safari\//, 'Safari'],
];

/** @type {[RegExp, string][]} */
const SYSTEMS = [
  [/Android/, 'Android'],
  [/iPhone|iPod/, 'iPhone'],
  [/iPad/, 'iPad'],
  [/CrOS/, 'ChromeOS'],
  [/Windows/, 'Windows'],
  [/Macintosh|Mac OS X/, 'Mac'],
  [/Linux/, 'Linux'],
];

/**
 * A name that tells people which device this is, e.g. "Firefox on Android".
 * @param {{userAgent: string, maxTouchPoints?: number, userAgentData?: {brands?: {brand: string}[]}}} nav
 * @returns {string}
 */
export function defaultName(nav = navigator) {
  const ua = nav.userAgent || '';
  const brands = (nav.userAgentData?.brands || []).map((b) => b.brand);
  let browser = BRANDS.find(([brand]) => brands.includes(brand))?.[1];
  browser ||= BROWSERS.find(([pattern]) => pattern.test(ua))?.[1] || 'Browser';
  let system = SYSTEMS.find(([pattern]) => pattern.test(ua))?.[1] || 'this device';
  // iPadOS presents itself as a Mac; only the touch screen gives it away.
  if (system === 'Mac' && (nav.maxTouchPoints || 0) > 1) system = 'iPad';
  return `${browser} on ${system}`;
}

/**
 * Trim and shorten a typed name the way the server will accept it.
 * @param {string} raw
 * @param {number} maxLength
 */
export function cleanName(raw, maxLength) {
  // eslint-disable-next-line no-control-regex
  const text = raw
    .replace(/[\u0000-\u001f\u007f]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  return Array.from(text).slice(0, maxLength).join('');
}

/** @param {number} maxLength */
export function loadName(maxLength) {
  let saved = '';
  try {
    saved = localStorage.getItem(STORAGE_KEY) || '';
  } catch {
    /* storage disabled */
  }
  return cleanName(saved, maxLength) || cleanName(defaultName(), maxLength);
}

/** @param {string} name */
export function saveName(name) {
  try {
    localStorage.setItem(STORAGE_KEY, name);
  } catch {
    /* storage disabled: name lasts this visit */
  }
}

/** Up to two initials for an avatar. @param {string} name */
export function initials(name) {
  const words = name.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w));
  const letters = words.slice(0, 2).map((w) => Array.from(w.replace(/^[^\p{L}\p{N}]+/u, ''))[0] || '');
  return letters.join('').toUpperCase() || '?';
}

/** A stable hue for a peer's avatar. @param {string} key */
export function hue(key) {
  let h = 0;
  for (const ch of key) h = (h * 31 + /** @type {number} */ (ch.codePointAt(0))) % 360;
  return h;
}

/** Names compared the way people read them: without case or accents. @param {string} name */
export function nameKey(name) {
  return name.normalize('NFD').replace(/\p{M}/gu, '').toLocaleLowerCase().replace(/\s+/g, ' ').trim();
}

/**
 * A short code that tells two people with the same name apart, the same on every screen
 * (derived from the server-assigned peer id, which a resumed tab keeps).
 * @param {string} id
 */
export function peerTag(id) {
  let h = 2166136261;
  for (const ch of id) h = Math.imul(h ^ /** @type {number} */ (ch.codePointAt(0)), 16777619) >>> 0;
  return h.toString(36).toUpperCase().padStart(4, '0').slice(-4);
}
