// Decodes QR codes off the main thread for public/verify/qrscan.js, with jsQR (npm, served at
// /vendor/jsqr.js) where the browser has no BarcodeDetector. A classic worker: jsQR is a
// UMD script that sets self.jsQR. Each message is an ImageData; the answer is the text
// of the QR code in it, or null.
let ready = true;
try {
  importScripts('/vendor/jsqr.js');
} catch {
  ready = false;
}
postMessage({ ready });
onmessage = (event) => {
  const image = /** @type {ImageData} */ (event.data);
  // The decoder /vendor/jsqr.js set, typed from the npm package.
  const jsQR = /** @type {typeof import('jsqr').default} */ (/** @type {any} */ (self).jsQR);
  const found = ready
    ? jsQR(image.data, image.width, image.height, { inversionAttempts: 'dontInvert' })
    : null;
  postMessage({ text: found ? found.data : null });
};
