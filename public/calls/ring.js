// The incoming-call ring: a soft two-tone chime from WebAudio (no sound file to fetch)
// and a vibration pattern on phones, repeated until answered.

const PERIOD_MS = 3000;

/** @type {AudioContext | null} */
let audio = null;
/** @type {ReturnType<typeof setInterval> | undefined} */
let timer;

export function startRinging() {
  stopRinging();
  try {
    audio ||= new AudioContext();
    // Allowed once the user has touched the page; before that the ring is silent (vibration only).
    audio.resume().catch(() => {});
  } catch {
    audio = null;
  }
  ring();
  timer = setInterval(ring, PERIOD_MS);
}

export function stopRinging() {
  clearInterval(timer);
  timer = undefined;
  navigator.vibrate?.(0);
}

function ring() {
  navigator.vibrate?.([300, 150, 300]);
  if (!audio || audio.state !== 'running') return;
  const start = audio.currentTime + 0.02;
  const gain = audio.createGain();
  gain.gain.setValueAtTime(0, start);
  gain.connect(audio.destination);
  for (const offset of [0, 0.5]) {
    // two short chimes
    gain.gain.linearRampToValueAtTime(0.2, start + offset + 0.03);
    gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.45);
  }
  for (const [frequency, offset] of [
    [659.3, 0],
    [880, 0.5],
  ]) {
    const tone = audio.createOscillator();
    tone.frequency.value = frequency;
    tone.connect(gain);
    tone.start(start + offset);
    tone.stop(start + offset + 0.5);
  }
}
