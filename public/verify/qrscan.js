// Reading a QR code with the camera (the security code's fallback, docs/verification.md):
// the browser's BarcodeDetector where it reads QR codes, else jsQR in a worker
// (public/verify/qr-worker.js). Loaded only when someone taps "Scan their code".

import { assetUrl } from '../core/dom.js';

/** How often a frame is looked at: enough to feel instant, little enough for a phone. */
const SCAN_EVERY_MS = 150;
/** The largest side of a frame handed to the decoder (a QR code on a screen is big). */
const SCAN_SIDE = 640;

/** @returns {Promise<((source: HTMLVideoElement) => Promise<string | null>) | null>} */
async function nativeDetector() {
  const Detector = /** @type {any} */ (globalThis).BarcodeDetector;
  if (!Detector) return null;
  try {
    const formats = await Detector.getSupportedFormats();
    if (!formats.includes('qr_code')) return null;
  } catch {
    return null;
  }
  const detector = new Detector({ formats: ['qr_code'] });
  return async (video) => {
    const codes = await detector.detect(video);
    return codes[0]?.rawValue ?? null;
  };
}

/**
 * @returns {Promise<{decode: (source: HTMLVideoElement) => Promise<string | null>, stop: () => void} | null>}
 */
async function workerDetector() {
  const worker = new Worker(assetUrl('verify/qr-worker.js'));
  const ready = await new Promise((resolve) => {
    worker.onmessage = (event) => resolve(Boolean(event.data?.ready));
    worker.onerror = () => resolve(false);
  });
  if (!ready) {
    worker.terminate();
    return null;
  }
  const canvas = document.createElement('canvas');
  const context = /** @type {CanvasRenderingContext2D} */ (
    canvas.getContext('2d', { willReadFrequently: true })
  );
  return {
    decode: (video) => {
      const scale = Math.min(1, SCAN_SIDE / Math.max(video.videoWidth, video.videoHeight));
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      return new Promise((resolve) => {
        worker.onmessage = (event) => resolve(event.data?.text ?? null);
        worker.postMessage(image, [image.data.buffer]);
      });
    },
    stop: () => worker.terminate(),
  };
}

export class ScanError extends Error {}

/**
 * Show the camera in `video` until a QR code is read; resolves with its text. Rejects
 * with a ScanError whose message says what to do (no camera, no decoder), or an
 * AbortError when `signal` aborts. The camera is released either way.
 * @param {HTMLVideoElement} video @param {AbortSignal} signal
 * @returns {Promise<string>}
 */
export async function scanQr(video, signal) {
  const native = await nativeDetector();
  const fallback = native ? null : await workerDetector();
  if (!native && !fallback) {
    throw new ScanError('This browser can’t read QR codes here. Compare the five words instead.');
  }
  /** @type {MediaStream} */
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: 'environment' },
      audio: false,
    });
  } catch {
    fallback?.stop();
    throw new ScanError('The camera is not available for scanning. Compare the five words instead.');
  }
  const stop = () => {
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
    fallback?.stop();
  };
  try {
    video.srcObject = stream;
    video.muted = true;
    video.playsInline = true;
    await video.play();
    const decode = native || /** @type {NonNullable<typeof fallback>} */ (fallback).decode;
    while (!signal.aborted) {
      if (video.videoWidth) {
        const text = await decode(video).catch(() => null);
        if (text) return text;
      }
      await new Promise((resolve) => setTimeout(resolve, SCAN_EVERY_MS));
    }
    throw new DOMException('Scan cancelled', 'AbortError');
  } finally {
    stop();
  }
}

/**
 * What a scanned text says about this link's code (`qr`: the text our own QR carries).
 * @param {string} scanned @param {string} qr
 * @returns {'match' | 'differs' | 'not-a-code'}
 */
export function compareScanned(scanned, qr) {
  const text = scanned.trim();
  if (!/^LANCALL-VERIFY-\d+ /.test(text)) return 'not-a-code';
  return text === qr ? 'match' : 'differs';
}
