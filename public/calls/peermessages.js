// What the peer's service messages mean for the link itself (docs/protocol.md §6): its
// camera/mic state, and its hang-up over the data channel. Each is one small subscriber
// to the link's `message` events; the chat panel subscribes to chat and typing itself.

/**
 * The peer's microphone and camera on/off (their tracks keep flowing, muted), kept on the
 * link as `remoteMedia`, with a `remotemedia` event for the call screen.
 * @param {import('./peerlink.js').PeerLink} link
 */
export function followRemoteMedia(link) {
  link.subscribe('media', (/** @type {{audio: boolean, video: boolean}} */ data) => {
    link.remoteMedia = { audio: data.audio, video: data.video };
    link.emit('remotemedia', link.remoteMedia);
  });
}

/**
 * `disconnect`: the peer hung up. It comes over the data channel, so it arrives even
 * while the signalling socket is down. @param {import('./peerlink.js').PeerLink} link
 */
export function endOnDisconnect(link) {
  // Why they went, when they say (a page that was closed or reloaded says `left`).
  link.subscribe('disconnect', (data) => link.end(data?.reason === 'left' ? 'left' : 'hangup', 'remote'));
}

/**
 * `hold` (ext): their side holds this connection until its person confirms our device
 * (docs/verification.md), so nothing of ours reaches them yet. Kept on the link as
 * `remoteHold`, with a `remote-hold` event for the call screen (issue 19, 5: the held side
 * saw an ordinary call with no picture, sound or explanation).
 * @param {import('./peerlink.js').PeerLink} link
 */
export function followRemoteHold(link) {
  link.subscribe('hold', (/** @type {boolean} */ on) => {
    link.remoteHold = on;
    link.emit('remote-hold', on);
  });
}
