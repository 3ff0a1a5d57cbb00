/**
 * The browser's one RTCPeerConnection to the server, driven by the server's offers.
 *
 * How this works: the server always offers (PROTOCOL.md "Who offers"); we only answer. Each `offer`
 * message carries, besides the SDP, two maps that give the m-lines their meaning:
 * - `publish` {audio: mid, video: mid, screen: mid}: the m-lines our own microphone, camera and shared
 *   screen go out on (the screen m-line is answered `sendonly` while we share, else `inactive`);
 * - `tracks` {mid: {participantId, kind}}: which other participant each remaining m-line carries.
 * The SDP alone cannot tell us whose picture an m-line holds: the server's SFU re-sends every
 * participant's media from its own senders, and it reuses an m-line that went `inactive` for the next
 * track of the same kind (so a long meeting does not grow its SDP). A mid therefore means different
 * participants over time, and only the latest offer's `tracks` map says who is on it now.
 *
 * Offers are applied strictly one at a time, in arrival order (a promise chain), because each
 * `setRemoteDescription` / `createAnswer` / `setLocalDescription` round must finish before the next
 * offer can be applied, and because the server pairs our answer with its offer by `offerId`.
 *
 * Events: `remotetracks` (the mid -> participant/track map changed), `connectionstatechange`,
 * `negotiated` (an offer was answered), `negotiationerror` (detail: the error; the peer connection is then
 * unusable).
 */

export class HearingPeer extends EventTarget {
  /**
   * @param {object} options
   * @param {RTCIceServer[]} options.iceServers from `welcome`
   * @param {import("./media.js").LocalMedia} options.media our own tracks
   * @param {(message: object) => boolean} options.send sends one signaling message
   * @param {() => MediaStreamTrack | null} [options.screenTrack] our shared screen, or null
   */
  constructor({ iceServers, media, send, screenTrack = () => null }) {
    super();
    this.media = media;
    this.send = send;
    this.screenTrack = screenTrack;
    this.closed = false;
    /** kind -> mid, from the latest offer. */
    this.publish = {};
    /** mid -> {participantId, kind}, from the latest offer (set before it is applied: see ontrack). */
    this.trackMap = {};
    /** mid -> {participantId, kind, track}: the remote tracks currently carrying someone's media. */
    this.remoteTracks = new Map();

    this.chain = Promise.resolve();
    // Candidates can be gathered as soon as our first local description is set, a moment before the
    // answer goes out: hold them until then, so the server never sees a candidate before the answer.
    this.answerSent = false;
    this.pendingCandidates = [];

    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    this.pc.addEventListener("icecandidate", (event) => this.#onIceCandidate(event));
    this.pc.addEventListener("track", (event) => this.#onTrack(event));
    this.pc.addEventListener("connectionstatechange", () => {
      if (!this.closed) this.dispatchEvent(new Event("connectionstatechange"));
    });
  }

  get connectionState() {
    return this.pc.connectionState;
  }

  /** True once an offer with at least one m-line was applied (otherwise ICE never starts). */
  get hasMedia() {
    return this.pc.getTransceivers().some((tr) => tr.mid !== null);
  }

  /** Queue one `offer` message; it is applied after every offer queued before it. */
  enqueueOffer(message) {
    this.chain = this.chain
      .then(() => this.#applyOffer(message))
      .catch((err) => {
        if (this.closed) return;
        console.error("[peer] offer", message?.offerId, "failed", err);
        this.dispatchEvent(new CustomEvent("negotiationerror", { detail: err }));
      });
    return this.chain;
  }

  /**
   * Our camera or microphone changed while in the hearing (device unplugged, or switched): swap the
   * track on m-lines we already send on. `replaceTrack` needs no renegotiation; a kind we answered
   * `inactive` (no device at the time) can only start on the server's next offer.
   */
  async updateLocalTracks() {
    for (const [kind, mid] of Object.entries(this.publish)) {
      const transceiver = this.#transceiver(mid);
      if (!transceiver || transceiver.currentDirection !== "sendonly") continue;
      const track = this.#localTrack(kind);
      if (transceiver.sender.track === track) continue;
      try {
        await transceiver.sender.replaceTrack(track);
      } catch (err) {
        console.warn("[peer] replaceTrack failed for", kind, err);
      }
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.pc.close();
    this.remoteTracks.clear();
  }

  async #applyOffer(message) {
    if (this.closed) return;
    const { offerId, sdp } = message;
    if (!Number.isInteger(offerId) || typeof sdp !== "string") {
      throw new Error(`malformed offer (offerId ${offerId})`);
    }
    // Take the maps before setRemoteDescription: the `track` events fire inside it and read them.
    this.publish = sanitizePublish(message.publish);
    this.trackMap = sanitizeTracks(message.tracks);

    if (this.pc.remoteDescription === null && !/^m=/m.test(sdp)) {
      // An offer with no m-line: aiortc sends one to an observer while nobody publishes. Chromium
      // cannot apply it (aiortc writes an empty `a=group:BUNDLE`, and under max-bundle Chromium
      // refuses an offer without a BUNDLE group), yet the server waits for an answer. There is
      // nothing to negotiate, so answer with an equally empty session and leave the peer
      // connection untouched; the first offer with m-lines is then applied as a first offer.
      this.send({ type: "answer", sdp: emptyAnswer(offerId), offerId });
      this.dispatchEvent(new Event("negotiated"));
      return;
    }
    await this.pc.setRemoteDescription({ type: "offer", sdp });
    if (this.closed) return;

    for (const transceiver of this.pc.getTransceivers()) {
      if (transceiver.mid === null || isStopped(transceiver)) continue;
      const kind = Object.keys(this.publish).find((k) => this.publish[k] === transceiver.mid);
      if (kind) {
        await this.#attachLocal(transceiver, kind);
      } else {
        // Everything else only receives. The answer's direction is the intersection with the offer's,
        // so an m-line the server marked inactive stays inactive, whatever we set here.
        setDirection(transceiver, "recvonly");
      }
    }
    this.#syncRemoteTracks();

    const answer = await this.pc.createAnswer();
    if (this.closed) return;
    await this.pc.setLocalDescription(answer);
    if (this.closed) return;
    this.send({ type: "answer", sdp: this.pc.localDescription.sdp, offerId });
    if (!this.answerSent) {
      this.answerSent = true;
      for (const candidate of this.pendingCandidates.splice(0)) this.send(candidate);
    }
    this.dispatchEvent(new Event("negotiated"));
  }

  /** Our own track for a `publish` kind: microphone, camera, or the shared screen (null if none). */
  #localTrack(kind) {
    return (kind === "screen" ? this.screenTrack() : this.media.tracks[kind]) ?? null;
  }

  async #attachLocal(transceiver, kind) {
    const track = this.#localTrack(kind);
    if (track && transceiver.receiver.track.kind !== mediaKind(kind)) {
      console.warn(`[peer] publish.${kind} names mid ${transceiver.mid}, an m-line of another kind`);
      setDirection(transceiver, "inactive");
      return;
    }
    if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
    // No device of this kind (or not sharing a screen): answer inactive rather than sendonly-with-nothing,
    // so the server does not announce (and forward, and record) a track that will never carry media.
    setDirection(transceiver, track ? "sendonly" : "inactive");
  }

  /**
   * Rebuild mid -> {participant, track} from the latest `tracks` map. The `track` event alone is not
   * enough: it does not fire when an m-line goes inactive (the track must leave its tile) and a reused
   * m-line keeps the same receiver track object while it moves to another participant.
   */
  #syncRemoteTracks() {
    const next = new Map();
    for (const [mid, info] of Object.entries(this.trackMap)) {
      const transceiver = this.#transceiver(mid);
      if (!transceiver || isStopped(transceiver)) continue;
      const track = transceiver.receiver.track;
      if (track.kind !== mediaKind(info.kind)) {
        console.warn(`[peer] tracks[${mid}] says ${info.kind}, the m-line is ${track.kind}`);
        continue;
      }
      next.set(mid, { participantId: info.participantId, kind: info.kind, track });
    }
    if (!sameTrackMap(this.remoteTracks, next)) {
      this.remoteTracks = next;
      this.dispatchEvent(new Event("remotetracks"));
    }
  }

  #onTrack(event) {
    if (this.closed) return;
    const mid = event.transceiver?.mid;
    const info = mid != null ? this.trackMap[mid] : undefined;
    if (!info) return; // one of our publish m-lines echoing, or an m-line nobody is on
    const current = this.remoteTracks.get(mid);
    if (current && current.track === event.track && current.participantId === info.participantId) return;
    if (event.track.kind !== mediaKind(info.kind)) return; // #syncRemoteTracks says why
    this.remoteTracks.set(mid, { participantId: info.participantId, kind: info.kind, track: event.track });
    this.dispatchEvent(new Event("remotetracks"));
  }

  #onIceCandidate(event) {
    if (this.closed) return;
    const c = event.candidate;
    // A null candidate is the end of gathering: the protocol spells it `candidate: ""`.
    const message = {
      type: "candidate",
      candidate: c ? c.candidate : "",
      sdpMid: c?.sdpMid ?? null,
      sdpMLineIndex: c?.sdpMLineIndex ?? null,
    };
    if (this.answerSent) this.send(message);
    else this.pendingCandidates.push(message);
  }

  #transceiver(mid) {
    return this.pc.getTransceivers().find((tr) => tr.mid === mid) ?? null;
  }
}

/** A valid SDP with a session and no media (RFC 8866: v, o, s, t are all it needs). */
function emptyAnswer(version) {
  return `v=0\r\no=- 1 ${version} IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n`;
}

function isStopped(transceiver) {
  return transceiver.stopped === true || transceiver.currentDirection === "stopped" || transceiver.direction === "stopped";
}

function setDirection(transceiver, direction) {
  if (transceiver.direction === direction) return;
  try {
    transceiver.direction = direction;
  } catch (err) {
    // Only a stopped/stopping transceiver refuses; it is rejected in the answer anyway.
    console.warn("[peer] cannot set direction", transceiver.mid, direction, err);
  }
}

function sanitizePublish(publish) {
  const result = {};
  if (publish && typeof publish === "object") {
    for (const kind of ["audio", "video", "screen"]) {
      if (typeof publish[kind] === "string") result[kind] = publish[kind];
    }
  }
  return result;
}

/**
 * Remote track kinds: `audio`, `video` (camera) and `screen` (evidence shared from a screen; signaling/
 * knows it although PROTOCOL.md does not list it yet). A screen travels on a video m-line.
 */
const REMOTE_KINDS = new Set(["audio", "video", "screen"]);

function mediaKind(kind) {
  return kind === "screen" ? "video" : kind;
}

function sanitizeTracks(tracks) {
  const result = {};
  if (tracks && typeof tracks === "object") {
    for (const [mid, info] of Object.entries(tracks)) {
      if (!info || typeof info !== "object" || info.participantId == null) continue;
      if (!REMOTE_KINDS.has(info.kind)) continue;
      result[mid] = { participantId: String(info.participantId), kind: info.kind };
    }
  }
  return result;
}

function sameTrackMap(a, b) {
  if (a.size !== b.size) return false;
  for (const [mid, entry] of a) {
    const other = b.get(mid);
    if (!other || other.track !== entry.track || other.participantId !== entry.participantId) return false;
  }
  return true;
}
