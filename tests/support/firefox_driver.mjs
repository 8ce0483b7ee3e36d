// Drives one Firefox ESR for a Python test (tests/support/firefox.py) over WebDriver BiDi
// with puppeteer-core: JSON lines on stdin ({id, op, ...}), one answer per line on stdout
// ({id, ok, value} or {id, ok: false, error}). Ops: open (a page at a URL, as a name),
// evaluate (a function's source and an argument), waitFor (a predicate's source, a
// timeoutMs), click (a CSS selector), screenshot (a path), close. Firefox gets a fake
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

const ops = {
  async open({ url, name, width, height }) {
    page = await browser.newPage();
    await page.setViewport({ width: width || 1280, height: height || 800 });
    // Only on the app's pages: about:blank (every new tab's first document) has no storage.
    await page.evaluateOnNewDocument((n) => location.protocol === 'https:' && localStorage.setItem('lanCall.name', n), name);
    // Uncaught errors with where they came from (BiDi's own report carries no stack).
    await page.evaluateOnNewDocument(() => {
      const seen = (window.__pageErrors = []);
      const keep = (error, where) => seen.push(`${error?.name || 'Error'}: ${error?.message || error} ${where} ${String(error?.stack || '').split('\n').slice(0, 3).join(' < ')}`);
      window.addEventListener('error', (event) => keep(event.error || event.message, `${event.filename}:${event.lineno}:${event.colno}`));
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
  async click({ selector }) {
    await page.locator(selector).click();
    return null;
  },
  async screenshot({ path }) {
    await page.screenshot({ path });
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
    process.stdout.write(`${JSON.stringify({ id: request.id, ok: false, error: String(error?.message || error).slice(0, 2000) })}\n`);
  }
  if (request.op === 'close') break;
}
process.exit(0);
