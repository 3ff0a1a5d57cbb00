/**
 * One participant's presence in a hearing: the WebSocket, the peer connection, and getting both back
 * after a drop.
 *
 * How this works: each attempt is a `Connection` record holding its own `SignalingChannel` and (after
 * `welcome`) its own `HearingPeer`. Every handler first checks that its connection is still the current
 * one, so a late message or close from an abandoned attempt can do nothing. A lost attempt is torn down
 * whole and a fresh one started after a backoff (1 s, 2 s, 4 s … at most 10 s), with the same token:
 * aiortc has no ICE restart, so a new peer connection is the only repair the server can take part in.
 *
 * `state` is what the banner shows:
 *   idle -> connecting -> connected <-> reconnecting -> ... ; and the final states left / ended / failed.
 * `connected` means the server welcomed us and the media path is up (or there is no media to carry).
 *
 * Events: `statechange`, `retry` (detail {attempt, delayMs} or null once the attempt starts), `welcome`,
 * `participants`, `remotetracks`, `servererror` (detail: the error message).
 */

import { HearingPeer } from "./peer.js";
import { KINDS } from "./media.js";
import { SignalingChannel, signalingUrl } from "./signaling.js";

export const BACKOFF_INITIAL_MS = 1000;
export const BACKOFF_MAX_MS = 10000;
/** The server wants `join` within 10 s of the socket opening; we give its `welcome` this long. */
const WELCOME_TIMEOUT_MS = 15000;
/** ICE + DTLS takes well under a second on a working path; past this, start over. */
const MEDIA_TIMEOUT_MS = 20000;
/** `disconnected` often heals by itself (a lost burst on a thin link); give it this long first. */
const DISCONNECTED_GRACE_MS = 8000;
/** With no offer this long after `welcome` (nothing to receive, nothing to send), we are connected. */
const NO_MEDIA_GRACE_MS = 3000;

/** Fatal error codes after which trying again with the same token cannot succeed. */
const TERMINAL_ERRORS = new Set(["bad-token", "token-expired", "hearing-not-found", "forbidden"]);

export const OBSERVER_ROLE = "observer";
/** Roles that are in the hearing without being shown (signaling/roles.py `visible=False`). */
export const INVISIBLE_ROLES = new Set([OBSERVER_ROLE, "archivist", "admin"]);

export function backoffDelay(attempt) {
  return Math.min(BACKOFF_INITIAL_MS * 2 ** Math.max(0, attempt - 1), BACKOFF_MAX_MS);
}

/** Participant as the page keeps it; tolerant of fields the server leaves out (welcome has no `muted`). */
export function normalizeParticipant(p) {
  return {
    id: String(p.id),
    name: typeof p.name === "string" ? p.name : "",
    role: typeof p.role === "string" ? p.role : "",
    muted: { audio: p.muted?.audio === true, video: p.muted?.video === true },
  };
}

function normalizeIceServers(list) {
  if (!Array.isArray(list)) return [];
  const result = [];
  for (const entry of list) {
    if (!entry || typeof entry !== "object") continue;
    const urls = entry.urls;
    const valid = typeof urls === "string" || (Array.isArray(urls) && urls.every((u) => typeof u === "string"));
    if (!valid) continue; // RTCPeerConnection would throw on it
    const server = { urls };
    if (typeof entry.username === "string") server.username = entry.username;
    if (typeof entry.credential === "string") server.credential = entry.credential;
    result.push(server);
  }
  return result;
}

class Connection {
  constructor(channel) {
    this.channel = channel;
    this.peer = null;
    this.welcomed = false;
    this.offersBeforeWelcome = [];
    this.timers = new Set();
    this.mediaTimer = null;
    this.disconnectedTimer = null;
    /** Set once an offer was answered or none came for a while: no m-lines then means no media. */
    this.noMediaExpected = false;
  }

  after(ms, fn) {
    const id = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.add(id);
    return id;
  }

  cancel(id) {
    clearTimeout(id);
    this.timers.delete(id);
  }

  close() {
    for (const id of this.timers) clearTimeout(id);
    this.timers.clear();
    this.peer?.close();
    this.channel.close();
  }
}

export class HearingSession extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.token the join token from the page's URL
   * @param {import("./media.js").LocalMedia} options.media
   * @param {string} [options.url] the WebSocket URL
   */
  constructor({ token, media, url = signalingUrl() }) {
    super();
    this.token = token;
    this.media = media;
    this.url = url;
    this.state = "idle";
    /** Why the session stopped, for the final states: {reason} or {code, message}. */
    this.stopInfo = null;
    this.self = null;
    this.hearing = null;
    /** id -> participant, everyone but ourselves (observers included; the page decides what to show). */
    this.participants = new Map();
    this.iceServers = [];
    /** Consecutive attempts that did not reach `connected`. */
    this.attempt = 0;
    this.retry = null;
    this.conn = null;
    this.retryTimer = null;
    this.media.addEventListener("change", () => this.conn?.peer?.updateLocalTracks());
  }

  /** The live peer connection, or null (for tests: `window.tingshen.pc.getStats()`). */
  get pc() {
    return this.conn?.peer?.pc ?? null;
  }

  get remoteTracks() {
    return this.conn?.peer?.remoteTracks ?? new Map();
  }

  /** Join (or rejoin after leaving). No-op while already in the hearing. */
  join() {
    if (["connecting", "connected", "reconnecting"].includes(this.state)) return;
    this.attempt = 0;
    this.stopInfo = null;
    this.#connect("connecting");
  }

  /** Leave on purpose: tell the server, close everything, stop the camera. */
  leave() {
    if (this.conn?.welcomed) this.conn.channel.send({ type: "leave" });
    this.#stop("left", null);
  }

  /** Our own mute: silence the track and tell the others. */
  setMuted(kind, muted) {
    this.media.setMuted(kind, muted);
    if (this.conn?.welcomed) this.conn.channel.send({ type: "mute", kind, muted });
  }

  // ---------------------------------------------------------------------------------------------------
  // State

  #setState(state) {
    if (state === this.state) return;
    console.info(`[session] ${this.state} -> ${state}`);
    this.state = state;
    this.dispatchEvent(new Event("statechange"));
  }

  #setRetry(retry) {
    this.retry = retry;
    this.dispatchEvent(new CustomEvent("retry", { detail: retry }));
  }

  /** Derive the state of a welcomed connection from its peer connection. */
  #updateMediaState(conn) {
    if (conn !== this.conn || !conn.welcomed) return;
    const peer = conn.peer;
    const pcState = peer.connectionState;
    if (pcState === "connected" || (!peer.hasMedia && conn.noMediaExpected)) {
      this.attempt = 0;
      for (const id of [conn.mediaTimer, conn.disconnectedTimer]) if (id) conn.cancel(id);
      conn.mediaTimer = conn.disconnectedTimer = null;
      this.#setState("connected");
    } else if (pcState === "failed") {
      this.#lost(conn, "peer connection failed");
    } else if (pcState === "disconnected") {
      this.#setState("reconnecting");
      conn.disconnectedTimer ??= conn.after(DISCONNECTED_GRACE_MS, () =>
        this.#lost(conn, "peer connection stayed disconnected"),
      );
    } else if (peer.hasMedia) {
      // new / connecting with m-lines: ICE is working on it; give up if it takes far too long.
      conn.mediaTimer ??= conn.after(MEDIA_TIMEOUT_MS, () => this.#lost(conn, "media did not connect"));
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Connections

  #connect(state) {
    this.#setRetry(null);
    this.#setState(state);
    const conn = new Connection(new SignalingChannel(this.url));
    this.conn = conn;
    const { channel } = conn;
    channel.addEventListener("open", () => {
      if (conn === this.conn) channel.send({ type: "join", token: this.token });
    });
    channel.addEventListener("message", (event) => {
      if (conn === this.conn) this.#onMessage(conn, event.detail);
    });
    channel.addEventListener("close", (event) => {
      if (conn === this.conn) this.#lost(conn, `socket closed (${event.detail.code})`);
    });
    conn.after(WELCOME_TIMEOUT_MS, () => {
      if (!conn.welcomed) this.#lost(conn, "no welcome");
    });
  }

  /** The current attempt broke: drop it and try again after the backoff. */
  #lost(conn, why) {
    if (conn !== this.conn) return;
    console.warn("[session] connection lost:", why);
    this.conn = null; // first: closing fires the channel's close event, which must find it abandoned
    conn.close();
    // Keep the participant list (the grid does not flash empty); the next welcome replaces it.
    this.dispatchEvent(new Event("remotetracks"));
    this.attempt += 1;
    const delayMs = backoffDelay(this.attempt);
    this.#setState("reconnecting");
    this.#setRetry({ attempt: this.attempt, delayMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.#connect("reconnecting");
    }, delayMs);
  }

  /** Stop for good (until `join()` again). */
  #stop(state, info) {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const conn = this.conn;
    this.conn = null; // first, as in #lost
    conn?.close();
    this.stopInfo = info;
    this.media.stop();
    this.participants.clear();
    this.#setRetry(null);
    this.dispatchEvent(new Event("participants"));
    this.dispatchEvent(new Event("remotetracks"));
    this.#setState(state);
  }

  // ---------------------------------------------------------------------------------------------------
  // Server messages

  #onMessage(conn, message) {
    switch (message.type) {
      case "welcome":
        this.#onWelcome(conn, message);
        break;
      case "offer":
        if (conn.peer) conn.peer.enqueueOffer(message);
        else conn.offersBeforeWelcome.push(message); // out of order; applied right after welcome
        break;
      case "participant-joined":
      case "participant-updated":
        this.#upsertParticipant(message.participant);
        break;
      case "participant-left":
        if (this.participants.delete(String(message.participantId))) {
          this.dispatchEvent(new Event("participants"));
        }
        break;
      case "track-published":
        break; // informational: the offer that carries the track follows
      case "error":
        this.#onError(conn, message);
        break;
      case "bye":
        this.#onBye(conn, message);
        break;
      default:
        console.debug("[session] ignoring message type", message.type);
    }
  }

  #onWelcome(conn, message) {
    if (conn.welcomed) return;
    if (!message.participant || message.participant.id == null) {
      this.#lost(conn, "malformed welcome");
      return;
    }
    conn.welcomed = true;
    this.self = normalizeParticipant(message.participant);
    this.hearing = message.hearing && typeof message.hearing === "object" ? { ...message.hearing } : null;
    this.iceServers = normalizeIceServers(message.iceServers);
    this.participants = new Map();
    for (const p of Array.isArray(message.participants) ? message.participants : []) {
      if (p && p.id != null && String(p.id) !== this.self.id) {
        const participant = normalizeParticipant(p);
        this.participants.set(participant.id, participant);
      }
    }

    const makePeer = (iceServers) =>
      new HearingPeer({ iceServers, media: this.media, send: (m) => conn.channel.send(m) });
    let peer;
    try {
      peer = makePeer(this.iceServers);
    } catch (err) {
      // A bad iceServers entry (e.g. a malformed TURN URL) makes the constructor throw; on the court
      // network the server's host candidates are often reachable without TURN, so try that.
      console.error("[session] iceServers refused, trying without them", err);
      peer = makePeer([]);
    }
    conn.peer = peer;
    peer.addEventListener("connectionstatechange", () => this.#updateMediaState(conn));
    peer.addEventListener("remotetracks", () => {
      if (conn === this.conn) this.dispatchEvent(new Event("remotetracks"));
    });
    peer.addEventListener("negotiationerror", () => {
      this.dispatchEvent(new CustomEvent("servererror", { detail: { code: "negotiation", local: true } }));
      this.#lost(conn, "negotiation failed");
    });
    // After each answer, re-derive the state (an offer with no m-lines leaves ICE idle for good).
    peer.addEventListener("negotiated", () => {
      conn.noMediaExpected = true;
      this.#updateMediaState(conn);
    });
    for (const offer of conn.offersBeforeWelcome.splice(0)) peer.enqueueOffer(offer);

    // The server does not remember mute across connections, and has no other way to learn that we
    // have no camera or microphone: tell it, so the others see the right indicators. (Observers
    // publish nothing and are not shown, so there is nothing to say.)
    if (!INVISIBLE_ROLES.has(this.self.role)) {
      for (const kind of KINDS) {
        if (this.media.muted[kind] || !this.media.tracks[kind]) {
          conn.channel.send({ type: "mute", kind, muted: true });
        }
      }
    }

    conn.after(NO_MEDIA_GRACE_MS, () => {
      conn.noMediaExpected = true;
      this.#updateMediaState(conn);
    });
    this.dispatchEvent(new Event("welcome"));
    this.dispatchEvent(new Event("participants"));
    this.#updateMediaState(conn);
  }

  #upsertParticipant(raw) {
    if (!raw || raw.id == null) return;
    const participant = normalizeParticipant(raw);
    if (this.self && participant.id === this.self.id) return;
    this.participants.set(participant.id, participant);
    this.dispatchEvent(new Event("participants"));
  }

  #onError(conn, message) {
    const code = typeof message.code === "string" ? message.code : "unknown";
    const error = {
      code,
      message: typeof message.message === "string" ? message.message : "",
      fatal: message.fatal === true,
    };
    if (code === "stale-answer") {
      // Expected when a newer offer crossed our answer; the newer offer is already queued.
      console.debug("[session] stale answer", message);
    } else {
      this.dispatchEvent(new CustomEvent("servererror", { detail: error }));
    }
    // An error before `welcome` is the answer to our `join`: a refused join, whatever `fatal` says.
    const refusal = error.fatal || !conn.welcomed;
    if (code === "hearing-ended" && refusal) this.#stop("ended", { code });
    else if (TERMINAL_ERRORS.has(code) && refusal) this.#stop("failed", { code, message: error.message });
    // Other fatal errors: the server closes the socket and we come back after the backoff.
  }

  #onBye(conn, message) {
    const reason = typeof message.reason === "string" ? message.reason : "";
    switch (reason) {
      case "ended":
        this.#stop("ended", { reason });
        break;
      case "replaced": // we joined elsewhere: coming back here would throw that one out, and so on
      case "ejected":
        this.#stop("failed", { reason });
        break;
      default: // "shutdown" and anything new: the server may come back; try again with backoff
        this.#lost(conn, `bye (${reason})`);
    }
  }
}
