// Drives one Firefox ESR for a Python test (tests/support/firefox.py) over WebDriver BiDi
// with puppeteer-core: JSON lines on stdin ({id, op, ...}), one answer per line on stdout
// ({id, ok, value} or {id, ok: false, error}). Ops: open (a page at a URL, as a name),
// evaluate (a function's source and an argument), waitFor (a predicate's source, a
// timeoutMs), click (a selector: CSS or puppeteer's ::-p-aria(...), optionally within the
// first `container` whose text includes `text`), chooseFiles (click that way, then give
// the file chooser `paths`), fill (a field, then optionally press a key), reload,
// viewport, screenshot (a path, optionally the whole page), close. Firefox gets a fake
// camera and microphone through its media prefs.
import { createInterface } from 'node:readline';

import puppeteer from 'puppeteer-core';

const executablePath = process.env.FIREFOX || '/usr/bin/firefox-esr';
const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath,
  headless: true,
  acceptInsecureCerts: true,
  extraPrefsFirefox: {
    'media.navigator.streams.fake': true,
    'media.navigator.permission.disabled': true,
    'media.autoplay.default': 0,
    // A private window, as some people browse (FIREFOX_PRIVATE=1).
    'browser.privatebrowsing.autostart': process.env.FIREFOX_PRIVATE === '1',
  },
});
/**
 * A function made here from the test's source, so the page calls it (BiDi callFunction)
 * rather than evaluating a string, which the app's CSP forbids. @param {string} source
 */
function functionOf(source) {
  return new Function(`return (${source});`)(); // eslint-disable-line no-new-func
}

/** @type {import('puppeteer-core').Page | null} */
let page = null;

/**
 * The element a person would press: `selector` in the page, or within the first visible
 * `container` whose text includes `text`; waited for (up to 10 s) as a locator would.
 * @param {{selector: string, container?: string, text?: string}} request
 */
async function target({ selector, container, text }) {
  if (!container) return page.locator(selector).setTimeout(10000).waitHandle();
  const deadline = Date.now() + 10000;
  for (;;) {
    for (const scope of await page.$$(container)) {
      const matches = await scope.evaluate(
        (el, t) => el.textContent.includes(t) && el.getClientRects().length > 0,
        text || '',
      );
      const found = matches ? await scope.$(selector) : null;
      if (found) return found;
    }
    if (Date.now() > deadline) throw new Error(`no ${selector} within a ${container} with "${text}"`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const ops = {
  async open({ url, name, width, height }) {
    page = await browser.newPage();
    await page.setViewport({ width: width || 1280, height: height || 800 });
    // Only on the app's pages: about:blank (every new tab's first document) has no storage.
    await page.evaluateOnNewDocument(
      (n) => location.protocol === 'https:' && localStorage.setItem('lanCall.name', n),
      name,
    );
    // Uncaught errors with where they came from (BiDi's own report carries no stack).
    await page.evaluateOnNewDocument(() => {
      const seen = (window.__pageErrors = []);
      const keep = (error, where) =>
        seen.push(
          `${error?.name || 'Error'}: ${error?.message || error} ${where} ${String(error?.stack || '')
            .split('\n')
            .slice(0, 3)
            .join(' < ')}`,
        );
      window.addEventListener('error', (event) =>
        keep(event.error || event.message, `${event.filename}:${event.lineno}:${event.colno}`),
      );
      window.addEventListener('unhandledrejection', (event) => keep(event.reason, '(a promise)'));
    });
    await page.goto(url);
    return null;
  },
  async evaluate({ source, arg }) {
    return page.evaluate(functionOf(source), arg ?? null);
  },
  // Polled here, not with waitForFunction: a predicate may be async, and a pending
  // promise would count as truthy there.
  async waitFor({ source, arg, timeoutMs }) {
    const fn = functionOf(source);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await page.evaluate(fn, arg ?? null);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${source.slice(0, 200)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  },
  async click(request) {
    await (await target(request)).click();
    return null;
  },
  async chooseFiles({ paths, ...request }) {
    const button = await target(request);
    const [chooser] = await Promise.all([page.waitForFileChooser({ timeout: 10000 }), button.click()]);
    await chooser.accept(paths);
    return null;
  },
  async fill({ selector, value, press }) {
    await page.locator(selector).setTimeout(10000).fill(value);
    if (press) await page.keyboard.press(press);
    return null;
  },
  async reload() {
    await page.reload();
    return null;
  },
  async viewport({ width, height }) {
    await page.setViewport({ width, height });
    return null;
  },
  async screenshot({ path, fullPage }) {
    await page.screenshot({ path, fullPage: Boolean(fullPage) });
    return null;
  },
  async close() {
    await browser.close();
    return null;
  },
};

const lines = createInterface({ input: process.stdin });
process.stdout.write(`${JSON.stringify({ id: 0, ok: true, value: await browser.version() })}\n`);
for await (const line of lines) {
  const request = JSON.parse(line);
  try {
    const value = await ops[request.op](request);
    process.stdout.write(`${JSON.stringify({ id: request.id, ok: true, value: value ?? null })}\n`);
  } catch (error) {
    const reply = { id: request.id, ok: false, error: String(error?.message || error).slice(0, 2000) };
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  }
  if (request.op === 'close') break;
}
process.exit(0);
