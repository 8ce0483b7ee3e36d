// What arrives on each link in a call, read from getStats about once a second: frames
// decoded and bytes received (for the test hook and the tiles) and the audio level of
// each member's voice, from which the active speaker is chosen.

import { Emitter } from '../core/events.js';
import { pickSpeaker } from './grouplogic.js';

const POLL_MS = 750; // one getStats per link per poll: cheap, and quick enough for a speaker change

/** Events: `speaker` (peer id or null). */
export class LinkMeter extends Emitter {
  /** @param {() => import('./peerlink.js').PeerLink[]} links the links in a call now */
  constructor(links) {
    super();
    this.links = links;
    /** @type {string | null} */
    this.speaker = null;
    this.busy = false;
    setInterval(() => this.poll(), POLL_MS);
  }

  async poll() {
    if (this.busy) return; // a slow getStats: skip a beat rather than pile up
    this.busy = true;
    try {
      const links = this.links();
      await Promise.all(links.map((link) => measure(link)));
      const levels = new Map(
        links.filter((link) => link.is('connected')).map((link) => [link.peerId, link.meter.audioLevel]),
      );
      const speaker = levels.size > 1 ? pickSpeaker(levels, this.speaker) : null;
      if (speaker !== this.speaker) {
        this.speaker = speaker;
        this.emit('speaker', speaker);
      }
    } finally {
      this.busy = false;
    }
  }
}

/** @param {import('./peerlink.js').PeerLink} link */
async function measure(link) {
  const pc = link.pc;
  if (!pc) return;
  const meter = { framesDecoded: 0, bytesReceived: 0, audioLevel: 0 };
  try {
    (await pc.getStats()).forEach((/** @type {any} */ s) => {
      if (s.type !== 'inbound-rtp') return;
      meter.bytesReceived += s.bytesReceived || 0;
      if (s.kind === 'video') meter.framesDecoded += s.framesDecoded || 0;
      if (s.kind === 'audio') meter.audioLevel = Math.max(meter.audioLevel, s.audioLevel || 0);
    });
  } catch {
    return; // closed meanwhile
  }
  if (pc === link.pc) link.meter = meter;
}
