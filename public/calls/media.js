// Local camera and microphone: permission, device choice, toggles, screen sharing.

import { Emitter } from '../core/events.js';

/** @typedef {'pending' | 'ready' | 'partial' | 'blocked' | 'missing' | 'busy' | 'insecure'} MediaStatus */

const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
const WATCH = 'You can still join calls to watch, listen and chat.';
const HOW = 'tap the camera or padlock icon next to the page’s address, choose Allow, then Try again.';
/** @type {Record<string, [MediaStatus, string]>} why getUserMedia failed, in words */
const FAILURES = {
  NotAllowedError: [
    'blocked',
    `Camera and microphone are blocked for this page. To allow them, ${HOW} ${WATCH}`,
  ],
  NotFoundError: ['missing', `No camera or microphone was found. Plug one in, then Try again. ${WATCH}`],
  NotReadableError: [
    'busy',
    `The camera or microphone is in use by another app. Close it, then Try again. ${WATCH}`,
  ],
};

/**
 * Owns the one local MediaStream every call sends. Tracks are swapped in place, so a call
 * only needs `trackchange` ({kind, track}) to `replaceTrack`. `change`: anything else.
 */
export class Media extends Emitter {
  constructor() {
    super();
    this.stream = new MediaStream();
    /** @type {MediaStatus} */ this.status = 'pending';
    this.message = '';
    this.cameraBlocked = false; // the browser refused the camera (not merely absent or off)
    this.cameraOn = true;
    this.micOn = true;
    /** @type {MediaDeviceInfo[]} */ this.cameras = [];
    /** @type {MediaDeviceInfo[]} */ this.mics = [];
    /** @type {MediaStreamTrack | null} */ this.screenTrack = null;
    this.canShareScreen = Boolean(navigator.mediaDevices?.getDisplayMedia) && !isPhone();
    navigator.mediaDevices?.addEventListener('devicechange', () => this.listDevices());
  }

  get camera() {
    return this.stream.getVideoTracks()[0] || null;
  }
  get videoTrack() {
    return this.screenTrack || this.camera;
  }
  get audioTrack() {
    return this.stream.getAudioTracks()[0] || null;
  }

  /** Ask for camera and microphone; fall back to whichever one is allowed and present. */
  async start() {
    const devices = navigator.mediaDevices;
    if (!devices?.getUserMedia) {
      return this.settle(
        'insecure',
        'The browser keeps the camera off on this connection. ' +
          'Open the https:// address and trust this server if asked.',
      );
    }
    const video = { ...VIDEO, deviceId: stored('camera') };
    const audio = { ...AUDIO, deviceId: stored('mic') };
    try {
      this.adopt(await devices.getUserMedia({ video, audio }));
      this.cameraBlocked = false;
      return this.settle('ready', '');
    } catch (error) {
      const [cam, mic] = await Promise.allSettled([
        devices.getUserMedia({ video }),
        devices.getUserMedia({ audio }),
      ]);
      for (const result of [cam, mic]) if (result.status === 'fulfilled') this.adopt(result.value);
      if (cam.status === 'fulfilled' && mic.status === 'fulfilled') {
        this.cameraBlocked = false;
        return this.settle('ready', '');
      }
      if (cam.status !== mic.status) {
        const [missing, failed, effect] =
          cam.status === 'rejected'
            ? ['camera', cam, 'People will hear you but not see you.']
            : ['microphone', mic, 'People will see you but not hear you.'];
        const blocked = /** @type {PromiseRejectedResult} */ (failed).reason?.name === 'NotAllowedError';
        this.cameraBlocked = blocked && missing === 'camera';
        const why = blocked ? `is blocked. ${effect} To allow it, ${HOW}` : `is not available. ${effect}`;
        return this.settle('partial', `Your ${missing} ${why}`);
      }
      const name = /** @type {Error} */ (error)?.name;
      this.cameraBlocked = name === 'NotAllowedError';
      return this.settle(
        ...(FAILURES[name] || ['blocked', `The camera could not be started (${name}). Try again. ${WATCH}`]),
      );
    }
  }

  /** A failure that asking again can cure: permission changed, device freed or plugged in. */
  get canRetry() {
    return ['blocked', 'partial', 'missing', 'busy'].includes(this.status);
  }

  /** "Try again": ask the browser once more for what we do not have. */
  async retry() {
    if (!this.canRetry) return;
    const live = (/** @type {string} */ kind) =>
      this.stream.getTracks().some((t) => t.kind === kind && t.readyState === 'live');
    const missing = ['video', 'audio'].filter((kind) => !live(kind));
    if (missing.length !== 1) {
      this.stream.getTracks().forEach((t) => t.stop());
      this.status = 'pending';
      this.emit('change');
      return this.start();
    }
    const kind = missing[0];
    const base = kind === 'video' ? VIDEO : AUDIO;
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: base }).catch(() => null);
    if (!stream) return this.emit('change'); // still refused: the message stands
    this.adopt(stream);
    this.cameraBlocked = false;
    await this.settle('ready', '');
  }

  /** Take the tracks of `stream`, replacing ours of the same kind. @param {MediaStream} stream */
  adopt(stream) {
    for (const track of stream.getTracks()) {
      for (const old of this.stream.getTracks()) {
        if (old.kind === track.kind) {
          old.stop();
          this.stream.removeTrack(old);
        }
      }
      track.enabled = track.kind === 'video' ? this.cameraOn : this.micOn;
      this.stream.addTrack(track);
    }
  }

  /** @param {MediaStatus} status @param {string} message */
  async settle(status, message) {
    this.status = status;
    this.message = message;
    // A call started before permission was granted gets its tracks now.
    this.emit('trackchange', { kind: 'audio', track: this.audioTrack });
    this.emit('trackchange', { kind: 'video', track: this.videoTrack });
    await this.listDevices();
  }

  async listDevices() {
    const devices = (await navigator.mediaDevices?.enumerateDevices()) || [];
    // Before permission the labels are empty and the entries are placeholders.
    this.cameras = devices.filter((d) => d.kind === 'videoinput' && d.label);
    this.mics = devices.filter((d) => d.kind === 'audioinput' && d.label);
    this.emit('change');
  }

  /**
   * Camera on/off as a real track toggle: no renegotiation, the camera light stays on.
   * @param {boolean} on
   */
  setCamera(on) {
    this.cameraOn = on;
    for (const track of this.stream.getVideoTracks()) track.enabled = on;
    this.emit('change');
  }

  /** @param {boolean} on */
  setMic(on) {
    this.micOn = on;
    for (const track of this.stream.getAudioTracks()) track.enabled = on;
    this.emit('change');
  }

  /** @param {'camera' | 'mic'} which @param {string} deviceId */
  async use(which, deviceId) {
    const kind = which === 'camera' ? 'video' : 'audio';
    if (kind === 'video') {
      // Phones cannot open two cameras at once: release the old one first.
      for (const track of this.stream.getVideoTracks()) track.stop();
    }
    const base = kind === 'video' ? VIDEO : AUDIO;
    try {
      this.adopt(
        await navigator.mediaDevices.getUserMedia({ [kind]: { ...base, deviceId: { exact: deviceId } } }),
      );
      remember(which, deviceId);
      this.message = '';
    } catch (error) {
      this.message =
        `That ${which === 'camera' ? 'camera' : 'microphone'} could not be opened ` +
        `(${/** @type {Error} */ (error).name}).`;
      // Get back to a working device rather than none.
      await navigator.mediaDevices.getUserMedia({ [kind]: base }).then(
        (s) => this.adopt(s),
        () => {},
      );
    }
    if (kind === 'audio' || !this.screenTrack)
      this.emit('trackchange', { kind, track: kind === 'video' ? this.camera : this.audioTrack });
    this.emit('change');
  }

  /** The next camera in the list: front/back on a phone. */
  async switchCamera() {
    const index = this.cameras.findIndex((d) => d.deviceId === this.camera?.getSettings().deviceId);
    if (this.cameras.length > 1)
      await this.use('camera', this.cameras[(index + 1) % this.cameras.length].deviceId);
  }

  async shareScreen() {
    if (this.screenTrack) return this.stopScreen();
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true }).catch(() => null);
    const track = stream?.getVideoTracks()[0];
    if (!track) return; // the picker was closed
    track.contentHint = 'detail';
    track.onended = () => this.stopScreen(); // the browser's own "Stop sharing"
    this.screenTrack = track;
    this.emit('trackchange', { kind: 'video', track });
    this.emit('change');
  }

  stopScreen() {
    this.screenTrack?.stop();
    this.screenTrack = null;
    this.emit('trackchange', { kind: 'video', track: this.camera });
    this.emit('change');
  }
}

export function isPhone() {
  // @ts-ignore userAgentData is Chromium-only
  return navigator.userAgentData?.mobile ?? /Android|iPhone|iPad|iPod|Mobile/.test(navigator.userAgent);
}

/** @param {string} which */
function stored(which) {
  try {
    return localStorage.getItem(`lanCall.${which}`) || undefined;
  } catch {
    return undefined; // storage disabled
  }
}

/** @param {string} which @param {string} deviceId */
function remember(which, deviceId) {
  try {
    localStorage.setItem(`lanCall.${which}`, deviceId);
  } catch {
    // storage disabled: the choice lasts this visit
  }
}
