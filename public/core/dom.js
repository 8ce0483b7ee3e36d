// The page's small DOM helpers, for every feature: elements by id, button labels and
// icons, the notices that go away by themselves, and where an asset file is served.

const NOTICE_MS = 6000;

/** @param {string} id @returns {HTMLElement} */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Point a button's icon at another symbol of the sprite. @param {Element} button @param {string} icon */
export function setIcon(button, icon) {
  const use = button.querySelector('use');
  use?.setAttribute('href', use.getAttribute('href')?.replace(/#.*/, `#${icon}`) || '');
}

/**
 * Give a button its accessible name and the same desktop tooltip.
 * @param {Element} button @param {string} text
 */
export function setLabel(button, text) {
  button.setAttribute('aria-label', text);
  button.setAttribute('title', text);
}

/** A short message that goes away by itself (the newest three at most). @param {string} text */
export function showNotice(text) {
  const box = $('notices');
  const item = document.createElement('p');
  item.className = 'notice';
  item.dataset.testid = 'notice';
  item.textContent = text;
  box.append(item);
  if (box.children.length > 3) box.firstElementChild?.remove();
  setTimeout(() => item.remove(), NOTICE_MS);
}

/** Remove every notice (a call starts or ends: what they said is no longer news). */
export function clearNotices() {
  $('notices').replaceChildren();
}

/**
 * The address of a file under public/ (e.g. a worker script) at this page's asset version:
 * the same whether the page runs the sources or esbuild's bundle (server/bundle.py), where
 * `import.meta.url` is a chunk's and not the source module's.
 * @param {string} path relative to public/, e.g. "data/hash-worker.js"
 */
export function assetUrl(path) {
  return new URL(`/assets/${document.body.dataset.version || 'dev'}/${path}`, location.href);
}
