// Installable app: registers the service worker (public/sw.js) for this asset version,
// and picks up files shared into the app from the system share sheet (Web Share
// Target): the worker kept them in Cache Storage; the page asks whom to send them to.

const SHARED = 'lan-call-shared'; // the cache public/sw.js puts shared files in

/** @param {string} version the page's asset version */
export function registerServiceWorker(version) {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  const script = `/sw.js?v=${encodeURIComponent(version)}`;
  navigator.serviceWorker
    .register(script, { scope: '/' })
    .then((registration) => {
      // Ours, installed but waiting behind the old version's worker: it takes over now.
      const ours = (/** @type {ServiceWorker | null} */ worker) =>
        !!worker && new URL(worker.scriptURL).search === new URL(script, location.href).search;
      const nudge = () => {
        const waiting = registration.waiting;
        if (ours(waiting)) /** @type {ServiceWorker} */ (waiting).postMessage('take-over');
      };
      const watch = (/** @type {ServiceWorker | null} */ worker) =>
        worker?.addEventListener('statechange', nudge);
      nudge();
      watch(registration.installing);
      registration.addEventListener('updatefound', () => watch(registration.installing));
    })
    .catch((error) => {
      console.warn('service worker not registered', error);
    });
}

/** Files waiting from the share sheet (taken out of the cache: each is handed over once). */
export async function takeSharedFiles() {
  if (!('caches' in window) || !(await caches.has(SHARED))) return [];
  const cache = await caches.open(SHARED);
  const files = [];
  for (const request of await cache.keys()) {
    const response = await cache.match(request);
    if (response) {
      const name = decodeURIComponent(response.headers.get('X-File-Name') || 'file');
      const blob = await response.blob(); // backed by the cache on disk, not read into memory
      files.push(new File([blob], name, { type: response.headers.get('Content-Type') || '' }));
    }
    await cache.delete(request);
  }
  return files;
}

/**
 * After the share sheet opened the app: what the address says happened, in words, and
 * the files to send (the address is cleaned so a reload does not ask again).
 * @returns {Promise<{files: File[], notice: string}>}
 */
export async function sharedIntoApp() {
  const params = new URLSearchParams(location.search);
  const shared = params.get('shared');
  if (!shared) return { files: [], notice: '' };
  history.replaceState(null, '', '/');
  if (shared === 'unavailable') {
    return {
      files: [],
      notice: 'Open LAN Call once from the home screen first; then files can be shared into it.',
    };
  }
  const files = await takeSharedFiles().catch(() => []);
  if (!files.length) return { files, notice: 'Nothing to send came with the share.' };
  return { files, notice: '' };
}
