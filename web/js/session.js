/**
 * One participant's presence in a hearing: the WebSocket, the peer connection, and getting both back
 * after a drop.
 *
 * How this works: each attempt is a `Connection` record holding its own `SignalingChannel` and (after
 * `welcome`) its own `HearingPeer`. Every handler first checks that its connection is still the current
 * one, so a late message or close from an abandoned attempt can do nothing. A lost attempt is torn down
 * whole and a fresh one started after a backoff (1 s, 2 s, 4 s … at most 10 s), with the same token:
 * aiortc has no ICE restart, so a new peer connection is the only repair the server can take part in.
 * The backoff spaces the *starts* of attempts: an attempt that itself waited that long on a dead link was
 * the pause already, and more waiting would only delay the repair once the link is back. An attempt whose
 * socket never opened (the link is silent) reached no server and is retried after the shortest delay.
 *
 * `state` is what the banner shows:
 *   idle -> connecting -> connected <-> reconnecting -> ... ; and the final states left / ended / failed /
 *   refused (the judge did not let us in from the lobby) / ejected (the judge sent us out).
 * `connected` means the server welcomed us and the media path is up (or there is no media to carry).
 * Waiting in the lobby is `connected` with `admitted === false`: the socket is up, no offer comes until
 * the judge admits us (PROTOCOL.md "The lobby").
 *
 * The court's side of the hearing is kept here too: who waits in the lobby (judge and clerk only), the
 * hearing's state (open / paused with a lawful reason) and the hearing log's notes (judge and clerk).
 * The judge's commands (`admit`, `refuse`, `eject`, `pause`, `resume`, `setSpotlight`, `endHearing`) and
 * `addNote` only send; what changed comes back from the server as events, and a refusal as `servererror`.
 *
 * Events: `statechange`, `retry` (detail {attempt, delayMs} or null once the attempt starts), `welcome`,
 * `participants`, `remotetracks`, `servererror` (detail: the error message), `lobby` (`admitted`
 * changed), `waiting` (the lobby list changed), `hearingstate`, `note` (detail: the new note),
 * `floor` (who holds the floor, asks for it, is silenced), `spotlight` (whom everyone shows large),
 * `quality` (detail: participant id; judge and clerk), `videopaused` (`videoPaused` changed: audio first
 * on a poor link), `share` (`screenTrack` changed), `consultation` (detail: the private room's url).
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
/**
 * A socket not open after this long is abandoned for a fresh one. On a link that died, the OS retries
 * the TCP handshake ever more slowly (SYNs 1, 3, 7, 15 s after the first, on Linux), so a link that came
 * back could wait 8 s for the next SYN and then the welcome timeout; a new socket tries at once. Opening
 * takes a few round trips (TCP, TLS, upgrade): well under this even on a 700 ms satellite hop.
 */
const OPEN_TIMEOUT_MS = 6000;
/** With no offer this long after `welcome` (nothing to receive, nothing to send), we are connected. */
const NO_MEDIA_GRACE_MS = 3000;

/** Fatal error codes after which trying again with the same token cannot succeed. */
const TERMINAL_ERRORS = new Set(["bad-token", "token-expired", "hearing-not-found", "forbidden"]);

/** The judge's lawful reasons to pause the recording (signaling/messages.py `PAUSE_REASONS`). */
export const PAUSE_REASONS = Object.freeze(["recess", "non-public-evidence", "mediation"]);
/** A note of the hearing log is 1 to this many characters (PROTOCOL.md `note`). */
export const MAX_NOTE_CHARS = 2000;
/** Roles with the `control` grant (signaling/roles.py): admit, refuse, eject, spotlight, pause, resume, end. */
export const CONTROL_ROLES = new Set(["judge"]);
/** Roles told about the lobby and the hearing log (`control` or `notes` grant), and who write notes. */
export const STAFF_ROLES = new Set(["judge", "clerk"]);

export const OBSERVER_ROLE = "observer";
/** Roles that are in the hearing without being shown (signaling/roles.py `visible=False`). */
export const INVISIBLE_ROLES = new Set([OBSERVER_ROLE, "archivist", "admin"]);
/** Roles with the `screen` grant (signaling/roles.py `_PRESENTER`): may show evidence from a screen. */
export const SCREEN_ROLES = new Set(["judge", "clerk", "prosecutor", "defence", "party"]);
/** Roles that may go to the private consultation room (PROTOCOL.md `consult`). */
export const CONSULT_ROLES = new Set(["defence", "defendant"]);
/** Quality levels the server reports (PROTOCOL.md `quality`). */
export const QUALITY_LEVELS = new Set(["good", "poor", "bad"]);

export function backoffDelay(attempt) {
  return Math.min(BACKOFF_INITIAL_MS * 2 ** Math.max(0, attempt - 1), BACKOFF_MAX_MS);
}

/**
 * Participant as the page keeps it; tolerant of fields the server leaves out (welcome has no `muted`;
 * an older server sends no court: "" then, shown as the hearing's).
 */
export function normalizeParticipant(p) {
  const text = (value) => (typeof value === "string" ? value : "");
  return {
    id: String(p.id),
    name: text(p.name),
    role: text(p.role),
    muted: { audio: p.muted?.audio === true, video: p.muted?.video === true },
    court: text(p.court),
    courtName: text(p.courtName),
    courtNameEn: text(p.courtNameEn),
  };
}

/**
 * A note as the server will take it: CR/LF made LF, control characters other than newline and tab
 * dropped (the server refuses them), surrounding space trimmed. May be "" (nothing to send).
 */
export function cleanNoteText(text) {
  return String(text)
    .replace(/\r\n?/g, "\n")
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, "")
    .trim();
}

function normalizeNote(message) {
  return {
    at: Number.isFinite(message.at) ? message.at : Date.now() / 1000,
    authorId: message.authorId != null ? String(message.authorId) : "",
    authorName: typeof message.authorName === "string" ? message.authorName : "",
    text: typeof message.text === "string" ? message.text : "",
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
    this.startedAt = Date.now();
    /** The socket opened: something reached the server. */
    this.opened = false;
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
    /** null before the first welcome; false while waiting in the lobby; true once in the hearing. */
    this.admitted = null;
    /** id -> participant waiting in the lobby, in arrival order (told to the judge and clerk only). */
    this.waiting = new Map();
    /** The hearing's state: `open` or `paused` (with a lawful reason; null if joined during a pause). */
    this.hearingState = { state: null, pauseReason: null };
    /** The hearing log as received (judge and clerk), oldest first. Kept across reconnections. */
    this.notes = [];
    /** The floor (prefecture meetings) and the judge's mutes: holder id or null, requests, silenced. */
    this.floor = { holder: null, requests: [], silenced: [] };
    /** Participants the judge (on this page) muted; re-read from `floor` whenever no one holds it. */
    this.mutedByJudge = new Set();
    /** Whom the presiding judge spotlighted (everyone shows them large): participant id, or null. */
    this.spotlight = null;
    /** participant id -> {level, rttMs, ...}, the latest `quality` (judge and clerk). */
    this.quality = new Map();
    /** The server sends us audio only for now (our link cannot carry video). */
    this.videoPaused = false;
    /** Our shared screen's track while we share, else null. */
    this.screenTrack = null;
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
  // The judge's controls and the hearing log. Each returns whether the message went out; the server
  // answers with events (participant-joined, hearing-state, note, bye ...) or an `error`.

  admit(participantId) {
    return this.#send({ type: "admit", participantId: String(participantId) });
  }

  refuse(participantId) {
    return this.#send({ type: "refuse", participantId: String(participantId) });
  }

  eject(participantId) {
    return this.#send({ type: "eject", participantId: String(participantId) });
  }

  pause(reason) {
    if (!PAUSE_REASONS.includes(reason)) throw new Error(`not a lawful reason to pause: ${reason}`);
    return this.#send({ type: "pause", reason });
  }

  resume() {
    return this.#send({ type: "resume" });
  }

  /** End the hearing for everyone (judge only); the server answers every participant with `bye ended`. */
  endHearing() {
    return this.#send({ type: "end" });
  }

  /** Add a line to the hearing log; false (nothing sent) if the text is empty or too long. */
  addNote(text) {
    const clean = cleanNoteText(text);
    if (clean === "" || Array.from(clean).length > MAX_NOTE_CHARS) return false;
    return this.#send({ type: "note", text: clean });
  }

  /** Ask the chair for the floor. */
  requestFloor() {
    return this.#send({ type: "request-floor" });
  }

  /** The chair gives the floor to a participant, or takes it back (null: everyone may speak). */
  giveFloor(participantId) {
    return this.#send({ type: "give-floor", participantId: participantId == null ? null : String(participantId) });
  }

  /** The judge stops (or resumes) forwarding a participant's sound. */
  muteParticipant(participantId, muted) {
    const id = String(participantId);
    const sent = this.#send({ type: "mute-participant", participantId: id, muted: Boolean(muted) });
    if (sent) {
      if (muted) this.mutedByJudge.add(id);
      else this.mutedByJudge.delete(id);
      this.dispatchEvent(new Event("floor"));
    }
    return sent;
  }

  /** The judge shows a participant large to everyone, or clears the spotlight (null). */
  setSpotlight(participantId) {
    return this.#send({ type: "spotlight", participantId: participantId == null ? null : String(participantId) });
  }

  /** Ask for the link to the private consultation room (defence and defendant); `consultation` follows. */
  consult() {
    return this.#send({ type: "consult" });
  }

  /**
   * Start showing a screen: the browser asks which one; the server then offers again and the peer
   * answers the `publish.screen` m-line with this track. Throws if the browser refuses.
   */
  async startShare() {
    if (this.screenTrack) return true;
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true });
    const track = stream.getVideoTracks()[0] ?? null;
    if (!track) return false;
    if (!this.conn?.welcomed) {
      track.stop();
      this.#send({ type: "share", on: true }); // reports not-connected
      return false;
    }
    this.screenTrack = track;
    // The browser's own "stop sharing" ends the track.
    track.addEventListener("ended", () => {
      if (this.screenTrack === track) this.stopShare();
    });
    this.dispatchEvent(new Event("share"));
    return this.#send({ type: "share", on: true });
  }

  /** Stop showing the screen. */
  stopShare() {
    if (!this.#endShare()) return;
    if (this.conn?.welcomed) this.conn.channel.send({ type: "share", on: false });
    this.conn?.peer?.updateLocalTracks(); // replaceTrack(null) until the server's next offer
  }

  /** Forget the shared screen; whether there was one. */
  #endShare() {
    const track = this.screenTrack;
    if (!track) return false;
    this.screenTrack = null;
    track.stop();
    this.dispatchEvent(new Event("share"));
    return true;
  }

  #send(message) {
    const sent = Boolean(this.conn?.welcomed) && this.conn.channel.send(message);
    if (!sent) {
      this.dispatchEvent(new CustomEvent("servererror", { detail: { code: "not-connected", local: true } }));
    }
    return sent;
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
      conn.opened = true;
      if (conn === this.conn) channel.send({ type: "join", token: this.token });
    });
    channel.addEventListener("message", (event) => {
      if (conn === this.conn) this.#onMessage(conn, event.detail);
    });
    channel.addEventListener("close", (event) => {
      if (conn === this.conn) this.#lost(conn, `socket closed (${event.detail.code})`);
    });
    conn.after(OPEN_TIMEOUT_MS, () => {
      if (!conn.opened) this.#lost(conn, "socket did not open", { silent: true });
    });
    conn.after(WELCOME_TIMEOUT_MS, () => {
      if (!conn.welcomed) this.#lost(conn, "no welcome");
    });
  }

  /**
   * The current attempt broke: drop it and try again after the backoff, counted from the attempt's start
   * (at least `BACKOFF_INITIAL_MS` from now), or after `BACKOFF_INITIAL_MS` if `silent` (the socket never
   * opened: nothing reached the server).
   */
  #lost(conn, why, { silent = false } = {}) {
    if (conn !== this.conn) return;
    console.warn("[session] connection lost:", why);
    this.conn = null; // first: closing fires the channel's close event, which must find it abandoned
    conn.close();
    this.#endShare(); // a new connection starts without a share: the server forgot it
    this.#setVideoPaused(false);
    // Keep the participant list (the grid does not flash empty); the next welcome replaces it.
    this.dispatchEvent(new Event("remotetracks"));
    this.attempt += 1;
    let delayMs;
    if (silent) {
      delayMs = BACKOFF_INITIAL_MS; // nothing reached the server: nothing to spare it
    } else if (conn.opened) {
      delayMs = Math.max(BACKOFF_INITIAL_MS, backoffDelay(this.attempt) - (Date.now() - conn.startedAt));
    } else {
      delayMs = backoffDelay(this.attempt); // refused before opening: the server may be restarting
    }
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
    this.#endShare();
    this.#setVideoPaused(false);
    this.floor = { holder: null, requests: [], silenced: [] };
    this.mutedByJudge.clear();
    this.quality.clear();
    this.dispatchEvent(new Event("floor"));
    this.#setSpotlight(null);
    this.stopInfo = info;
    this.media.stop();
    this.participants.clear();
    this.waiting.clear();
    this.dispatchEvent(new Event("waiting"));
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
        // Someone admitted from the lobby arrives this way: off the waiting list, onto the grid.
        if (message.participant?.id != null) this.#removeWaiting(String(message.participant.id));
        this.#upsertParticipant(message.participant);
        break;
      case "participant-updated":
        this.#upsertParticipant(message.participant);
        break;
      case "participant-left": {
        const id = String(message.participantId);
        this.#removeWaiting(id); // left the lobby, or refused
        if (this.participants.delete(id)) {
          this.dispatchEvent(new Event("participants"));
        }
        break;
      }
      case "participant-waiting":
        this.#addWaiting(message.participant);
        break;
      case "admitted":
        this.#onAdmitted(message);
        break;
      case "hearing-state":
        this.#setHearingState(message.state, message.pauseReason);
        break;
      case "note":
        this.#onNote(message);
        break;
      case "track-published":
      case "track-unpublished":
        break; // informational: the offer that carries (or drops) the track follows
      case "floor":
        this.#onFloor(message);
        break;
      case "spotlight":
        this.#setSpotlight(message.participantId != null ? String(message.participantId) : null);
        break;
      case "quality":
        this.#onQuality(message);
        break;
      case "video-paused":
        this.#setVideoPaused(true);
        break;
      case "video-resumed":
        this.#setVideoPaused(false);
        break;
      case "consultation":
        if (typeof message.url === "string" && message.url !== "") {
          this.dispatchEvent(new CustomEvent("consultation", { detail: message.url }));
        }
        break;
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
    // An older server says nothing of the lobby: then we are in.
    this.admitted = message.admitted !== false;
    this.waiting = new Map();
    for (const p of Array.isArray(message.waiting) ? message.waiting : []) {
      if (p && p.id != null && String(p.id) !== this.self.id) {
        const participant = normalizeParticipant(p);
        this.waiting.set(participant.id, participant);
      }
    }
    // The welcome gives the state but not why a pause began; `hearing-state` says that when it changes.
    const welcomeState = typeof this.hearing?.state === "string" ? this.hearing.state : null;
    this.hearingState = {
      state: welcomeState,
      pauseReason:
        welcomeState === "paused" && this.hearingState.state === "paused" ? this.hearingState.pauseReason : null,
    };
    this.iceServers = normalizeIceServers(message.iceServers);
    this.participants = new Map();
    for (const p of Array.isArray(message.participants) ? message.participants : []) {
      if (p && p.id != null && String(p.id) !== this.self.id) {
        const participant = normalizeParticipant(p);
        this.participants.set(participant.id, participant);
      }
    }

    const makePeer = (iceServers) =>
      new HearingPeer({
        iceServers,
        media: this.media,
        send: (m) => conn.channel.send(m),
        screenTrack: () => this.screenTrack,
      });
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

    // The floor and the spotlight start afresh: the server sends them right after this welcome when
    // they are set (they may have changed while we were away).
    this.floor = { holder: null, requests: [], silenced: [] };
    this.mutedByJudge.clear();
    this.spotlight = null;

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
    this.dispatchEvent(new Event("lobby"));
    this.dispatchEvent(new Event("waiting"));
    this.dispatchEvent(new Event("hearingstate"));
    this.dispatchEvent(new Event("floor"));
    this.dispatchEvent(new Event("spotlight"));
    this.dispatchEvent(new Event("participants"));
    this.#updateMediaState(conn);
  }

  /** The judge let us in from the lobby; an offer follows. */
  #onAdmitted(message) {
    this.admitted = true;
    // Who is already in the hearing (the lobby's welcome listed no one), if the server says.
    if (Array.isArray(message.participants)) {
      for (const p of message.participants) {
        if (p && p.id != null && String(p.id) !== this.self?.id) {
          const participant = normalizeParticipant(p);
          this.participants.set(participant.id, participant);
        }
      }
    }
    this.dispatchEvent(new Event("lobby"));
    this.dispatchEvent(new Event("participants"));
  }

  #addWaiting(raw) {
    if (!raw || raw.id == null) return;
    const participant = normalizeParticipant(raw);
    if (this.self && participant.id === this.self.id) return;
    this.waiting.set(participant.id, participant);
    this.dispatchEvent(new Event("waiting"));
  }

  #removeWaiting(id) {
    if (this.waiting.delete(id)) this.dispatchEvent(new Event("waiting"));
  }

  #setHearingState(state, pauseReason) {
    if (typeof state !== "string") return;
    this.hearingState = {
      state,
      pauseReason: state === "paused" && typeof pauseReason === "string" ? pauseReason : null,
    };
    if (this.hearing) this.hearing.state = state;
    this.dispatchEvent(new Event("hearingstate"));
  }

  #onFloor(message) {
    const ids = (list) => (Array.isArray(list) ? list.filter((id) => id != null).map(String) : []);
    this.floor = {
      holder: message.holder != null ? String(message.holder) : null,
      requests: ids(message.requests),
      silenced: ids(message.silenced),
    };
    // With no one holding the floor, `silenced` is exactly who the judge muted.
    if (this.floor.holder === null) this.mutedByJudge = new Set(this.floor.silenced);
    else for (const id of this.mutedByJudge) if (!this.floor.silenced.includes(id)) this.mutedByJudge.delete(id);
    this.dispatchEvent(new Event("floor"));
  }

  #setSpotlight(participantId) {
    if (this.spotlight === participantId) return;
    this.spotlight = participantId;
    this.dispatchEvent(new Event("spotlight"));
  }

  #onQuality(message) {
    if (message.participantId == null || !QUALITY_LEVELS.has(message.level)) return;
    const id = String(message.participantId);
    const num = (v) => (Number.isFinite(v) ? v : null);
    this.quality.set(id, {
      level: message.level,
      rttMs: num(message.rttMs),
      lossInPct: num(message.lossInPct),
      lossOutPct: num(message.lossOutPct),
      kbpsIn: num(message.kbpsIn),
      kbpsOut: num(message.kbpsOut),
    });
    this.dispatchEvent(new CustomEvent("quality", { detail: id }));
  }

  #setVideoPaused(paused) {
    if (this.videoPaused === paused) return;
    this.videoPaused = paused;
    this.dispatchEvent(new Event("videopaused"));
  }

  #onNote(message) {
    if (typeof message.text !== "string") return;
    const note = normalizeNote(message);
    this.notes.push(note);
    this.dispatchEvent(new CustomEvent("note", { detail: note }));
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
        this.#stop("failed", { reason });
        break;
      case "refused": // the judge did not let us in from the lobby
      case "ejected": // the judge sent us out; the invitation no longer works
        this.#stop(reason, { reason });
        break;
      default: // "shutdown" and anything new: the server may come back; try again with backoff
        this.#lost(conn, `bye (${reason})`);
    }
  }
}
