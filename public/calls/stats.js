// The stats overlay: what getStats says about the call, once a second, with a bitrate sparkline.

const HISTORY = 60; // samples (seconds) in the sparkline

/**
 * @typedef {{rtt: number | null, inKbps: number | null, outKbps: number | null, width: number,
 *   height: number, fps: number | null, codec: string, route: string}} Summary
 * @typedef {{time: number, bytesIn: number, bytesOut: number}} Totals
 */

export class StatsOverlay {
  /** @param {HTMLElement} root holds `dd[data-stat]` fields and the sparkline canvas */
  constructor(root) {
    this.root = root;
    this.canvas = /** @type {HTMLCanvasElement} */ (root.querySelector('canvas'));
    /** @type {RTCPeerConnection | null} */ this.pc = null;
    this.timer = 0;
    /** @type {Totals | null} */ this.last = null;
    /** @type {{in: number, out: number}[]} */ this.history = [];
  }

  get visible() {
    return !this.root.hidden;
  }

  /** @param {RTCPeerConnection} pc */
  show(pc) {
    this.pc = pc;
    this.root.hidden = false;
    this.sample();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.sample(), 1000);
  }

  hide() {
    this.root.hidden = true;
    clearInterval(this.timer);
    this.pc = null;
    this.last = null;
    this.history = [];
  }

  async sample() {
    const pc = this.pc;
    if (!pc || pc.connectionState === 'closed') return;
    const report = await pc.getStats();
    if (pc !== this.pc) return; // hidden, or another call, while we waited
    const [summary, totals] = summarize(report, this.last);
    this.last = totals;
    if (summary.inKbps !== null) {
      this.history.push({ in: summary.inKbps, out: summary.outKbps || 0 });
      if (this.history.length > HISTORY) this.history.shift();
    }
    this.render(summary);
  }

  /** @param {Summary} s */
  render(s) {
    const set = (/** @type {string} */ name, /** @type {string} */ text) => {
      const field = this.root.querySelector(`[data-stat="${name}"]`);
      if (field) field.textContent = text;
    };
    set('rtt', s.rtt === null ? '–' : `${Math.round(s.rtt * 1000)} ms`);
    set('in', rate(s.inKbps));
    set('out', rate(s.outKbps));
    const fps = s.fps === null ? '' : ` · ${Math.round(s.fps)} fps`;
    set('video', s.width ? `${s.width}×${s.height}${fps}` : '–');
    set('codec', s.codec || '–');
    set('route', s.route || '–');
    this.draw();
  }

  draw() {
    const { canvas } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth * ratio;
    const height = canvas.clientHeight * ratio;
    if (!width || !height) return;
    if (canvas.width !== width || canvas.height !== height) Object.assign(canvas, { width, height });
    const g = canvas.getContext('2d');
    if (!g) return;
    g.clearRect(0, 0, width, height);
    const peak = Math.max(1, ...this.history.map((p) => Math.max(p.in, p.out)));
    const line = (/** @type {'in' | 'out'} */ key, /** @type {string} */ colour) => {
      g.beginPath();
      this.history.forEach((point, i) => {
        const x = width - (this.history.length - 1 - i) * (width / (HISTORY - 1));
        const y = height - 2 * ratio - (point[key] / peak) * (height - 4 * ratio);
        if (i) g.lineTo(x, y);
        else g.moveTo(x, y);
      });
      g.strokeStyle = colour;
      g.lineWidth = 1.5 * ratio;
      g.stroke();
    };
    line('out', '#f5b971');
    line('in', '#7cc4ff');
  }
}

/**
 * Reduce a getStats report to what a person can read.
 * @param {RTCStatsReport} report @param {Totals | null} previous
 * @returns {[Summary, Totals]}
 */
export function summarize(report, previous) {
  /** @type {Record<string, any>} */ const byId = {};
  let bytesIn = 0;
  let bytesOut = 0;
  let time = 0;
  let pair = null;
  let video = /** @type {RTCInboundRtpStreamStats | null} */ (null);
  report.forEach((stat) => {
    byId[stat.id] = stat;
    time = Math.max(time, stat.timestamp);
    if (stat.type === 'inbound-rtp') {
      bytesIn += stat.bytesReceived || 0;
      if (stat.kind === 'video') video = stat;
    } else if (stat.type === 'outbound-rtp') {
      bytesOut += stat.bytesSent || 0;
    } else if (stat.type === 'transport' && stat.selectedCandidatePairId) {
      pair = stat.selectedCandidatePairId;
    }
  });
  // Firefox has no transport stats: fall back to the nominated, working pair.
  const selected =
    (pair && byId[pair]) ||
    Object.values(byId).find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded');
  const local = selected && byId[selected.localCandidateId];
  const remote = selected && byId[selected.remoteCandidateId];
  const seconds = previous ? (time - previous.time) / 1000 : 0;
  const kbps = (/** @type {number} */ now, /** @type {number} */ before) =>
    seconds > 0 ? Math.max(0, ((now - before) * 8) / 1000 / seconds) : null;
  const codec = video?.codecId && byId[video.codecId]?.mimeType;
  return [
    {
      rtt: selected?.currentRoundTripTime ?? null,
      inKbps: previous ? kbps(bytesIn, previous.bytesIn) : null,
      outKbps: previous ? kbps(bytesOut, previous.bytesOut) : null,
      width: video?.frameWidth || 0,
      height: video?.frameHeight || 0,
      fps: video?.framesPerSecond ?? null,
      codec: codec ? codec.replace(/^video\//, '') : '',
      route:
        local && remote
          ? `${local.candidateType} ↔ ${remote.candidateType} (${local.protocol || 'udp'})`
          : '',
    },
    { time, bytesIn, bytesOut },
  ];
}

/** @param {number | null} kbps */
function rate(kbps) {
  if (kbps === null) return '–';
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${Math.round(kbps)} kbit/s`;
}
