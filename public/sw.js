// The service worker (scope /): makes the app installable, keeps the app shell of the
// current asset version for a flaky network, and receives files shared into the app
// from the system share sheet (Web Share Target, see manifest.webmanifest).
//
// Registered as /sw.js?v=VERSION, so a new asset version is a new worker: it takes over
// at once and drops the caches of older versions. Versioned assets
// (/assets/VERSION/...) never change, so they are served from the cache first; the page
// itself (it embeds the version) always comes from the network when it can.

// `self`, typed as this worker's own scope (TypeScript's WebWorker lib types it as any
// worker's; `npx tsc -p public/tsconfig.workers.json` checks this file).
const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));
const VERSION = new URL(sw.location.href).searchParams.get('v') || 'dev';
const SHELL = `lan-call-shell-${VERSION}`;
const SHARED = 'lan-call-shared'; // files shared into the app, until a page takes them

sw.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then(() => sw.skipWaiting()));
});

// The page asks a worker of its own version that is still waiting to take over: Chromium
// sometimes leaves the new version waiting after a live reload although install called
// skipWaiting (seen 2 times in 10 in test_installable), and the page would then keep the
// old worker and its cache.
sw.addEventListener('message', (event) => {
  if (event.data === 'take-over') sw.skipWaiting();
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('lan-call-shell-') && name !== SHELL) await caches.delete(name);
      }
      await sw.clients.claim();
    })(),
  );
});

// A call's notification shown from here (where the page cannot show its own): a tap
// brings the app's tab forward, or opens it.
sw.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(
    (async () => {
      const tabs = await sw.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const tab = tabs.find((client) => new URL(client.url).origin === sw.location.origin);
      if (tab) await tab.focus();
      else await sw.clients.openWindow('/');
    })(),
  );
});

sw.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== sw.location.origin) return;
  if (request.method === 'POST' && url.pathname === '/share') {
    event.respondWith(receiveShare(request));
    return;
  }
  if (request.method !== 'GET') return;
  if (url.pathname.startsWith(`/assets/${VERSION}/`)) {
    event.respondWith(cacheFirst(request));
  } else if (request.mode === 'navigate' && url.pathname === '/') {
    event.respondWith(networkFirst(request));
  }
});

/** @param {Request} request */
async function cacheFirst(request) {
  const cache = await caches.open(SHELL);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

/** @param {Request} request */
async function networkFirst(request) {
  const cache = await caches.open(SHELL);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put('/', response.clone());
    return response;
  } catch (error) {
    const hit = await cache.match('/');
    if (hit) return hit;
    throw error;
  }
}

/**
 * Files from the share sheet: kept in Cache Storage (on disk, not in memory) under
 * /shared/N with their name and type, then the page opens and asks whom to send them to.
 * @param {Request} request
 */
async function receiveShare(request) {
  try {
    const form = await request.formData();
    const cache = await caches.open(SHARED);
    let n = 0;
    for (const item of form.getAll('files')) {
      if (typeof item === 'string') continue;
      n += 1;
      const headers = {
        'Content-Type': item.type || 'application/octet-stream',
        'X-File-Name': encodeURIComponent(item.name || 'file'),
      };
      await cache.put(`/shared/${Date.now()}-${n}`, new Response(item, { headers }));
    }
    return Response.redirect(n ? '/?shared=files' : '/?shared=none', 303);
  } catch {
    return Response.redirect('/?shared=failed', 303);
  }
}
