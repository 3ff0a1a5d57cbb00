/**
 * The hearing page (`/hearing?token=...`): the device check before joining, the lobby (waiting for the
 * presiding judge to admit us), the room, and the screens shown once the participant has left, the
 * hearing ended, joining failed, or the judge refused or removed the participant.
 *
 * In the room, the court has more: the judge and the clerk see who waits in the lobby and keep the
 * hearing log (notes); the presiding judge admits, refuses, ejects, pauses and resumes the recording
 * and ends the hearing. Everyone sees whether the hearing is being recorded.
 *
 * Also: audio first (a notice while the server sends us sound only), the floor (ask for it; the judge
 * gives it, takes it back and mutes participants), the spotlight (the judge shows one participant large
 * to everyone), connection quality on the court's tiles, sharing a screen (evidence), and the private
 * consultation room (defence and defendant).
 *
 * This module only wires the DOM. The protocol lives in `session.js` (WebSocket + reconnection) and
 * `peer.js` (offers and tracks), the camera and microphone in `media.js`, the tiles in `tiles.js`, and
 * every string in `i18n.js`. Each `render*` function redraws one part of the page from the current
 * state and is safe to call at any time, so a language switch simply calls them all again.
 */

import { TwoStepButton } from "./confirm.js";
import { bindLanguageSelect, initLanguage, onLanguageChange, t, tOr } from "./i18n.js";
import { LocalMedia } from "./media.js";
import {
  cleanNoteText,
  CONSULT_ROLES,
  CONTROL_ROLES,
  HearingSession,
  INVISIBLE_ROLES,
  MAX_NOTE_CHARS,
  OBSERVER_ROLE,
  PAUSE_REASONS,
  SCREEN_ROLES,
  STAFF_ROLES,
} from "./session.js";
import { courtLabel, isVisible, ParticipantGrid, roleLabel } from "./tiles.js";

const $ = (id) => document.getElementById(id);

/** getUserMedia can wait on a permission prompt; past this, joining is allowed anyway. */
const MEDIA_START_WAIT_MS = 8000;
const TOAST_MS = 8000;
const BANNER_STATES = new Set([
  "connecting",
  "connected",
  "reconnecting",
  "failed",
  "left",
  "ended",
  "refused",
  "ejected",
]);
const FINAL_STATES = new Set(["left", "ended", "failed", "refused", "ejected"]);
/** A judge's command that the server neither carried out nor refused: its button works again after this. */
const PENDING_MS = 5000;

initLanguage();
bindLanguageSelect($("language-select"));

const token = new URLSearchParams(location.search).get("token") ?? "";
const media = new LocalMedia();
const session = new HearingSession({ token, media });
const grid = new ParticipantGrid($("participant-grid"), {
  onAudioBlocked,
  onEject: (participantId) => session.eject(participantId),
  onMute: (participantId, muted) => session.muteParticipant(participantId, muted),
  onSpotlight: (participantId) => session.setSpotlight(participantId),
});

let mediaReady = false; // the first device request settled (or took too long)
let mediaBusy = false; // a device switch is in progress

// ---------------------------------------------------------------------------------------------------
// Debugging handle for tests: `await window.tingshen.pc.getStats()`. Getters, so it is always current.

Object.defineProperty(window, "tingshen", {
  value: Object.freeze({
    /**
     * "prejoin", then the banner's states: connecting, connected, reconnecting, and the final ones
     * failed, left, ended, refused, ejected.
     */
    get state() {
      return session.state === "idle" ? "prejoin" : session.state;
    },
    /** Everyone in the hearing except ourselves, observers included: [{id, name, role, muted}]. */
    get participants() {
      return [...session.participants.values()].map((p) => ({ ...p, muted: { ...p.muted } }));
    },
    /** The live RTCPeerConnection, or null between attempts. */
    get pc() {
      return session.pc;
    },
    get self() {
      return session.self ? { ...session.self } : null;
    },
    get hearing() {
      return session.hearing ? { ...session.hearing } : null;
    },
    /** false while waiting in the lobby, true once admitted, null before the first welcome. */
    get admitted() {
      return session.admitted;
    },
    /** Who waits in the lobby (judge and clerk only; empty for others): [{id, name, role}]. */
    get waiting() {
      return [...session.waiting.values()].map(({ id, name, role }) => ({ id, name, role }));
    },
    /** {state: "open" | "paused" | ..., pauseReason}. */
    get hearingState() {
      return { ...session.hearingState };
    },
    /** The hearing log as received (judge and clerk): [{at, authorId, authorName, text}]. */
    get notes() {
      return session.notes.map((note) => ({ ...note }));
    },
    /** {holder, requests, silenced}: the floor and the judge's mutes. */
    get floor() {
      const { holder, requests, silenced } = session.floor;
      return { holder, requests: [...requests], silenced: [...silenced] };
    },
    /** Whom the judge spotlighted (shown large to everyone): a participant id, or null. */
    get spotlight() {
      return session.spotlight;
    },
    /** Whether the server sends us audio only for now (audio first). */
    get videoPaused() {
      return session.videoPaused;
    },
    /** mid -> {participantId, kind} of the remote tracks being played. */
    get tracks() {
      const result = {};
      for (const [mid, entry] of session.remoteTracks) {
        result[mid] = { participantId: entry.participantId, kind: entry.kind };
      }
      return result;
    },
  }),
  enumerable: true,
});

// ---------------------------------------------------------------------------------------------------
// Screens and banner

function showScreen(name) {
  for (const id of ["prejoin", "lobby", "room", "closed"]) $(id).hidden = id !== name;
  document.body.dataset.screen = name;
}

/** The screen the session's state calls for, once the participant pressed "join". */
function renderScreen() {
  if (FINAL_STATES.has(session.state)) {
    renderClosed();
    showScreen("closed");
  } else if (session.admitted === false) {
    showScreen("lobby");
  } else {
    showScreen("room");
    renderRoom();
  }
}

function renderBanner() {
  const banner = $("connection-state");
  const state = session.state;
  if (!BANNER_STATES.has(state)) {
    banner.removeAttribute("data-state");
    banner.textContent = "";
    return;
  }
  banner.dataset.state = state;
  const retry = session.retry;
  banner.textContent =
    state === "reconnecting" && retry
      ? t("state.reconnectingIn", { seconds: Math.ceil(retry.delayMs / 1000), attempt: retry.attempt })
      : t(`state.${state}`);
}

function renderCaseInfo() {
  const hearing = session.hearing;
  const court = hearing ? courtLabel(hearing) : ""; // the court's name (the code from older servers)
  const caseNumber = hearing?.caseNumber != null ? String(hearing.caseNumber) : "";
  $("case-court").textContent = court;
  $("case-number").textContent = caseNumber;
  $("prejoin-court").textContent = court;
  $("prejoin-case-number").textContent = caseNumber;
  $("prejoin-case").hidden = !hearing;
  $("prejoin-case-unknown").hidden = Boolean(hearing);
  const self = session.self;
  $("case-self").textContent = self ? t("hearing.you", { name: self.name, role: roleLabel(self.role) }) : "";
  document.title = caseNumber ? t("hearing.titleWithCase", { caseNumber }) : t("hearing.title");
}

function renderClosed() {
  const state = session.state;
  const info = session.stopInfo ?? {};
  let title = "";
  let body = "";
  let canRejoin = false;
  if (state === "left") {
    title = t("closed.left.title");
    body = t("closed.left.body");
    canRejoin = true;
  } else if (state === "ended") {
    title = t("closed.ended.title");
    body = t("closed.ended.body");
  } else if (state === "refused" || state === "ejected") {
    // No way back from here: the judge decided (and an ejected invitation no longer works).
    title = t(`closed.${state}.title`);
    body = t(`closed.${state}.body`);
  } else if (state === "failed") {
    title = t("closed.failed.title");
    if (info.reason === "replaced") {
      body = t("closed.replaced");
      canRejoin = true; // take the hearing back to this window, on purpose
    } else if (info.code) {
      body = tOr(`error.${info.code}`, info.message || t("error.unknown"));
    }
  }
  $("closed-title").textContent = title;
  $("closed-body").textContent = body;
  $("rejoin-button").hidden = !canRejoin;
  $("rejoin-button").disabled = false;
}

// ---------------------------------------------------------------------------------------------------
// Own camera and microphone

function setVideoTrack(video, track) {
  const current = video.srcObject?.getVideoTracks()[0] ?? null;
  if (current === track) return;
  video.srcObject = track ? new MediaStream([track]) : null;
  if (track) video.play().catch(() => {}); // muted video: autoplay is always allowed
}

function renderOwnVideo() {
  const track = media.tracks.video;
  const showing = Boolean(track) && !media.muted.video;
  setVideoTrack($("preview-video"), track);
  setVideoTrack($("self-view"), track);
  $("preview-off").hidden = showing;
  $("self-view").hidden = !showing;
}

const DEVICE_SELECTS = [
  { kind: "video", id: "camera-select", noneKey: "prejoin.noCamera" },
  { kind: "audio", id: "microphone-select", noneKey: "prejoin.noMicrophone" },
];

function renderDeviceSelects() {
  const unavailable = LocalMedia.unavailableReason() !== null;
  for (const { kind, id, noneKey } of DEVICE_SELECTS) {
    const select = $(id);
    const options = media.devices[kind].map((device, i) =>
      new Option(device.label || t("prejoin.deviceUnnamed", { n: i + 1 }), device.deviceId),
    );
    options.push(new Option(t(noneKey), ""));
    select.replaceChildren(...options);
    select.value = media.activeDeviceId(kind) ?? media.choice[kind] ?? "";
    if (select.selectedIndex < 0) select.value = "";
    select.disabled = unavailable || mediaBusy || !mediaReady;
  }
}

function renderMediaMessages() {
  const list = $("media-messages");
  const items = [];
  const whole = LocalMedia.unavailableReason();
  if (whole) {
    items.push(t(`media.${whole}`));
  } else {
    for (const kind of ["video", "audio"]) {
      const reason = media.errors[kind];
      if (reason) items.push(t(`media.${kind}.${reason}`));
    }
  }
  list.replaceChildren(
    ...items.map((text) => {
      const li = document.createElement("li");
      li.className = "notice warning";
      li.textContent = text;
      return li;
    }),
  );
}

function renderJoinButton() {
  $("join-button").disabled = !token || !mediaReady || mediaBusy;
  $("no-token").hidden = Boolean(token);
}

for (const { kind, id } of DEVICE_SELECTS) {
  $(id).addEventListener("change", async (event) => {
    const deviceId = event.target.value; // read before re-rendering resets the <select>
    mediaBusy = true;
    renderDeviceSelects();
    renderJoinButton();
    try {
      await media.selectDevice(kind, deviceId);
    } finally {
      mediaBusy = false;
      renderDeviceSelects();
      renderJoinButton();
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// Controls

// Icons are decoration (aria-hidden); the button's text is its accessible name, and `aria-pressed`
// carries the state, so the name stays the same while the state changes.
const ICONS = {
  mic: '<path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9z"/>',
  camera: '<path d="M15 8v8H5V8h10m1-2H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4V7a1 1 0 0 0-1-1z"/>',
  slash: '<path d="M3.3 2 2 3.3l18.7 18.7 1.3-1.3z"/>',
};

function setControl(button, { icon, label, pressed, available }) {
  const svg = `<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">${ICONS[icon]}${
    pressed || !available ? ICONS.slash : ""
  }</svg>`;
  button.innerHTML = svg; // constant markup only; the label below is set as text
  const span = document.createElement("span");
  span.textContent = label;
  button.append(span);
  button.setAttribute("aria-pressed", String(pressed));
  button.disabled = !available;
}

function renderControls() {
  const observer = INVISIBLE_ROLES.has(session.self?.role); // watches and listens only
  const controls = [
    { kind: "audio", id: "mute-button", icon: "mic", key: "control.mute", noneKey: "control.noMicrophone" },
    { kind: "video", id: "camera-button", icon: "camera", key: "control.cameraOff", noneKey: "control.noCamera" },
  ];
  for (const { kind, id, icon, key, noneKey } of controls) {
    const available = Boolean(media.tracks[kind]);
    setControl($(id), {
      icon,
      label: available ? t(key) : t(noneKey),
      pressed: available && media.muted[kind],
      available,
    });
    $(id).hidden = observer;
  }
}

$("mute-button").addEventListener("click", () => session.setMuted("audio", !media.muted.audio));
$("camera-button").addEventListener("click", () => session.setMuted("video", !media.muted.video));
$("leave-button").addEventListener("click", () => session.leave());
$("lobby-leave-button").addEventListener("click", () => session.leave());

$("join-button").addEventListener("click", () => {
  if (!token) return;
  session.join();
  renderScreen();
});

$("rejoin-button").addEventListener("click", async () => {
  $("rejoin-button").disabled = true;
  await media.restart();
  session.join();
  renderScreen();
});

// Leaving the page on purpose is a leave, not a drop: the others see "left" at once instead of
// waiting for the heartbeat to time out.
window.addEventListener("pagehide", () => {
  if (["connecting", "connected", "reconnecting"].includes(session.state)) session.leave();
});

// ---------------------------------------------------------------------------------------------------
// The room

function renderRoom() {
  grid.setHearing(session.hearing); // whose court is "here" on the tiles
  grid.render(session.participants, session.remoteTracks);
  const all = [...session.participants.values()];
  const visible = all.filter(isVisible).length;
  const observers = all.filter((p) => p.role === OBSERVER_ROLE).length;
  $("room-waiting").hidden = visible > 0;
  $("observer-count").hidden = observers === 0;
  $("observer-count").textContent = observers > 0 ? t("room.observers", { n: observers }) : "";
  renderControls();
  renderOwnVideo();
  renderCourtControls();
  renderFloor();
  renderSpotlight();
  renderRoomControls();
  renderVideoPaused();
}

// ---------------------------------------------------------------------------------------------------
// Recording state (everyone)

function renderRecordingState() {
  const el = $("recording-state");
  const { state, pauseReason } = session.hearingState;
  if (!session.self || (state !== "open" && state !== "paused")) {
    el.hidden = true;
    el.removeAttribute("data-state");
    el.textContent = "";
    return;
  }
  el.hidden = false;
  if (state === "paused") {
    el.dataset.state = "paused";
    el.dataset.reason = pauseReason ?? "";
    el.textContent = pauseReason
      ? t("recording.paused", { reason: tOr(`pause.reason.${pauseReason}`, pauseReason) })
      : t("recording.pausedNoReason");
  } else {
    el.dataset.state = "recording";
    el.dataset.reason = "";
    el.textContent = t("recording.on");
  }
}

// ---------------------------------------------------------------------------------------------------
// The court's controls: the lobby list (judge; clerk read-only), the notes (clerk and judge), and the
// presiding judge's pause / resume / end and eject (on the tiles).

const isJudge = () => CONTROL_ROLES.has(session.self?.role);
const isStaff = () => STAFF_ROLES.has(session.self?.role);

/** participant id -> timer, for lobby entries whose admit/refuse went out and awaits its effect. */
const lobbyPending = new Map();
/** The pause/resume that went out and awaits `hearing-state`: a timer, or null. */
let hearingStatePending = null;
/** The note text sent and not yet echoed back by the server (the input is cleared on its echo). */
let pendingNote = null;

const endButton = new TwoStepButton($("end-hearing-button"), {
  onConfirm: () => session.endHearing(),
  render: (armed) => {
    $("end-hearing-button").textContent = t(armed ? "judge.endConfirm" : "judge.end");
  },
});

function renderCourtControls() {
  const staff = isStaff();
  const judge = isJudge();
  $("staff-panel").hidden = !staff;
  $("room").dataset.staff = String(staff);
  $("judge-controls").hidden = !judge;
  if (!judge) endButton.disarm();
  grid.setCanEject(judge);
  renderLobbyPanel();
  renderJudgeControls();
  renderNotesForm();
}

/** The lawful reasons, in the page's language (rebuilt only on a language switch: an open list stays open). */
function renderPauseReasons() {
  const select = $("pause-reason");
  const chosen = select.value || PAUSE_REASONS[0];
  select.replaceChildren(...PAUSE_REASONS.map((reason) => new Option(t(`pause.reason.${reason}`), reason)));
  select.value = chosen;
}

function renderJudgeControls() {
  const select = $("pause-reason");
  const paused = session.hearingState.state === "paused";
  $("pause-group").hidden = paused;
  $("resume-button").hidden = !paused;
  const pending = hearingStatePending !== null;
  $("pause-button").disabled = pending;
  $("resume-button").disabled = pending;
  select.disabled = pending;
  endButton.refresh();
}

function renderLobbyPanel() {
  const list = $("lobby-list");
  const judge = isJudge();
  const waiting = session.waiting;
  $("lobby-readonly").hidden = judge || waiting.size === 0;
  $("lobby-empty").hidden = waiting.size > 0;
  $("lobby-count").textContent = waiting.size > 0 ? `(${waiting.size})` : "";
  // Keyed update: an entry that stays keeps its element, so keyboard focus on it is not lost.
  const entries = new Map([...list.children].map((li) => [li.dataset.participantId, li]));
  for (const [id, li] of entries) {
    if (!waiting.has(id)) {
      li.remove();
      clearTimeout(lobbyPending.get(id));
      lobbyPending.delete(id);
    }
  }
  for (const participant of waiting.values()) {
    const li = entries.get(participant.id) ?? createLobbyEntry(participant);
    if (!li.isConnected) list.append(li);
    updateLobbyEntry(li, participant, judge);
  }
}

function createLobbyEntry(participant) {
  const li = document.createElement("li");
  li.className = "lobby-entry";
  li.dataset.testid = "lobby-entry";
  li.dataset.participantId = participant.id;
  const who = document.createElement("div");
  who.className = "lobby-who";
  const name = document.createElement("span");
  name.className = "lobby-name";
  const role = document.createElement("span");
  role.className = "lobby-role";
  who.append(name, role);
  const actions = document.createElement("div");
  actions.className = "lobby-actions";
  const admit = document.createElement("button");
  admit.type = "button";
  admit.className = "button primary small";
  admit.dataset.testid = "admit-button";
  admit.dataset.participantId = participant.id;
  admit.addEventListener("click", () => lobbyCommand(participant.id, (id) => session.admit(id)));
  const refuse = document.createElement("button");
  refuse.type = "button";
  refuse.className = "button small";
  refuse.dataset.testid = "refuse-button";
  refuse.dataset.participantId = participant.id;
  refuse.addEventListener("click", () => lobbyCommand(participant.id, (id) => session.refuse(id)));
  actions.append(admit, refuse);
  li.append(who, actions);
  return li;
}

function updateLobbyEntry(li, participant, judge) {
  li.querySelector(".lobby-name").textContent = participant.name;
  const role = roleLabel(participant.role);
  li.querySelector(".lobby-role").textContent = role;
  li.querySelector(".lobby-role").hidden = role === "";
  li.querySelector(".lobby-actions").hidden = !judge;
  const pending = lobbyPending.has(participant.id);
  li.dataset.pending = String(pending);
  for (const [testid, key] of [
    ["admit-button", "lobbyPanel.admit"],
    ["refuse-button", "lobbyPanel.refuse"],
  ]) {
    const button = li.querySelector(`[data-testid="${testid}"]`);
    button.textContent = t(key);
    button.setAttribute("aria-label", t(`${key}Label`, { name: participant.name }));
    button.dataset.participantName = participant.name;
    button.disabled = pending;
  }
}

/** Admit or refuse: the entry waits (buttons disabled) until the server moves the participant on. */
function lobbyCommand(participantId, command) {
  if (lobbyPending.has(participantId) || !command(participantId)) return;
  lobbyPending.set(
    participantId,
    setTimeout(() => {
      lobbyPending.delete(participantId);
      renderLobbyPanel();
    }, PENDING_MS),
  );
  renderLobbyPanel();
}

function hearingStateCommand(command) {
  if (hearingStatePending !== null || !command()) return;
  hearingStatePending = setTimeout(() => {
    hearingStatePending = null;
    renderJudgeControls();
  }, PENDING_MS);
  renderJudgeControls();
}

$("pause-button").addEventListener("click", () =>
  hearingStateCommand(() => session.pause($("pause-reason").value)),
);
$("resume-button").addEventListener("click", () => hearingStateCommand(() => session.resume()));

// The floor, screen sharing, consultation, audio first ---------------------------------------------

/** The participant's own room controls beyond camera and microphone. */
function renderRoomControls() {
  const role = session.self?.role;
  const inHearing = Boolean(session.self) && session.admitted === true;
  const { holder, requests, silenced } = session.floor;
  const selfId = session.self?.id;
  // Anyone who may speak asks for the floor; the chair gives it and needs not ask.
  const request = $("request-floor-button");
  request.hidden = !inHearing || INVISIBLE_ROLES.has(role) || isJudge();
  const hasFloor = holder !== null && holder === selfId;
  const requested = requests.includes(selfId);
  request.textContent = t(hasFloor ? "control.hasFloor" : requested ? "control.floorRequested" : "control.requestFloor");
  request.disabled = hasFloor || requested;
  $("self-silenced").hidden = !inHearing || !silenced.includes(selfId);

  const share = $("share-button");
  const sharing = session.screenTrack !== null;
  share.hidden = !inHearing || !SCREEN_ROLES.has(role) || !navigator.mediaDevices?.getDisplayMedia;
  share.textContent = t(sharing ? "control.stopShare" : "control.share");
  share.setAttribute("aria-pressed", String(sharing));
  share.disabled = shareBusy;

  $("consult-button").hidden = !inHearing || !CONSULT_ROLES.has(role);
}

let shareBusy = false;

$("share-button").addEventListener("click", async () => {
  if (session.screenTrack) {
    session.stopShare();
    return;
  }
  shareBusy = true;
  renderRoomControls();
  try {
    await session.startShare();
  } catch (err) {
    // The participant cancelled the browser's picker: nothing to say. Anything else: say it.
    if (err?.name !== "NotAllowedError" && err?.name !== "AbortError") {
      console.warn("[hearing] getDisplayMedia failed", err);
      showToast(t("error.share"), { code: "share" });
    }
  } finally {
    shareBusy = false;
    renderRoomControls();
  }
});

$("request-floor-button").addEventListener("click", () => session.requestFloor());
$("consult-button").addEventListener("click", () => session.consult());
$("take-floor-button").addEventListener("click", () => session.giveFloor(null));

/** The private consultation room opens in its own tab; this page stays in the hearing. */
function openConsultation(url) {
  window.open(url, "_blank", "noopener");
}

/** The judge's floor controls, and the floor marks on the tiles (everyone). */
function renderFloor() {
  grid.setFloor(session.floor, session.mutedByJudge);
  const { holder, requests } = session.floor;
  const judge = isJudge();
  $("floor-group").hidden = !judge || (holder === null && requests.length === 0);
  $("take-floor-button").hidden = !judge || holder === null;
  const list = $("floor-requests");
  const buttons = requests.map((id) => {
    const name = session.participants.get(id)?.name ?? id;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button control";
    button.dataset.testid = "give-floor-button";
    button.dataset.participantId = id;
    button.dataset.participantName = name;
    button.textContent = t("judge.giveFloor", { name });
    button.setAttribute("aria-label", t("judge.giveFloorLabel", { name }));
    button.addEventListener("click", () => session.giveFloor(id));
    return button;
  });
  list.replaceChildren(...buttons);
  renderRoomControls();
}

/** The spotlight: the main tile (everyone), and a notice when it is on us. */
function renderSpotlight() {
  grid.setSpotlight(session.spotlight);
  const inHearing = Boolean(session.self) && session.admitted === true;
  $("self-spotlighted").hidden = !inHearing || session.spotlight !== session.self.id;
}

function renderVideoPaused() {
  $("video-paused").hidden = !session.videoPaused || !session.self;
}

// Notes --------------------------------------------------------------------------------------------

const pad2 = (n) => String(n).padStart(2, "0");

/** HH:MM:SS in the court's local time (the browser's), whatever the language. */
function clockTime(date) {
  return `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
}

function noteEntry(note) {
  const date = new Date(note.at * 1000);
  const li = document.createElement("li");
  li.className = "note-entry";
  li.dataset.testid = "note-entry";
  li.dataset.authorId = note.authorId;
  const head = document.createElement("div");
  head.className = "note-head";
  const time = document.createElement("time");
  time.className = "note-time";
  time.dateTime = date.toISOString();
  time.textContent = clockTime(date);
  const author = document.createElement("span");
  author.className = "note-author";
  author.textContent = note.authorName;
  head.append(time, author);
  const text = document.createElement("p");
  text.className = "note-text";
  text.textContent = note.text;
  li.append(head, text);
  return li;
}

function appendNote(note) {
  const log = $("notes-log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  log.append(noteEntry(note));
  $("notes-empty").hidden = true;
  if (atBottom || note.authorId === session.self?.id) log.scrollTop = log.scrollHeight;
  // Our own note came back from the server: it is in the log, so the input can be emptied.
  if (note.authorId === session.self?.id && pendingNote !== null && note.text === pendingNote) {
    if (cleanNoteText($("note-input").value) === pendingNote) $("note-input").value = "";
    pendingNote = null;
    renderNotesForm();
  }
}

function renderNotesForm() {
  const text = cleanNoteText($("note-input").value);
  $("note-submit").disabled = text === "" || Array.from(text).length > MAX_NOTE_CHARS;
}

function submitNote() {
  const text = cleanNoteText($("note-input").value);
  if (text === "") return;
  // The text stays in the input until the server echoes it: a refused note (shown as a toast) is not lost.
  if (session.addNote(text)) pendingNote = text;
}

$("note-input").addEventListener("input", renderNotesForm);
$("note-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    submitNote();
  }
});
$("notes-form").addEventListener("submit", (event) => {
  event.preventDefault();
  submitNote();
});

let audioHintShown = false;

function onAudioBlocked() {
  if (audioHintShown) return;
  audioHintShown = true;
  showToast(t("media.audioBlocked"), { level: "info" });
  document.addEventListener(
    "pointerdown",
    () => {
      audioHintShown = false;
      grid.resumeAudio();
    },
    { once: true, capture: true },
  );
}

// ---------------------------------------------------------------------------------------------------
// Toasts

function showToast(text, { level = "error", code = null, timeoutMs = TOAST_MS } = {}) {
  const toast = document.createElement("div");
  toast.className = `toast ${level}`;
  toast.dataset.testid = "toast";
  if (code) toast.dataset.code = code;
  toast.setAttribute("role", level === "error" ? "alert" : "status");
  const message = document.createElement("span");
  message.className = "toast-message";
  message.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", t("toast.close"));
  close.textContent = "×";
  close.addEventListener("click", () => toast.remove());
  toast.append(message, close);
  $("toasts").append(toast);
  setTimeout(() => toast.remove(), timeoutMs);
}

function showServerError(error) {
  if (error.local) {
    showToast(t(`error.${error.code}`), { code: error.code });
    return;
  }
  // The code stays visible as given (it is what the clerk reads out to support); the text is ours.
  const text = tOr(`error.${error.code}`, error.message || t("error.unknown"));
  showToast(t("toast.error", { code: error.code, text }), { code: error.code });
}

// ---------------------------------------------------------------------------------------------------
// Wiring

session.addEventListener("statechange", () => {
  renderBanner();
  if (FINAL_STATES.has(session.state)) {
    grid.clear();
    endButton.disarm();
    renderScreen();
  }
});
session.addEventListener("retry", renderBanner);
session.addEventListener("welcome", () => {
  if (INVISIBLE_ROLES.has(session.self?.role)) media.stop(); // an observer's camera has nowhere to go
  renderCaseInfo();
  renderScreen();
});
session.addEventListener("lobby", () => {
  if (!FINAL_STATES.has(session.state)) renderScreen();
});
session.addEventListener("waiting", renderLobbyPanel);
session.addEventListener("hearingstate", () => {
  clearTimeout(hearingStatePending);
  hearingStatePending = null;
  renderRecordingState();
  renderJudgeControls();
});
session.addEventListener("note", (event) => appendNote(event.detail));
session.addEventListener("floor", renderFloor);
session.addEventListener("spotlight", renderSpotlight);
session.addEventListener("quality", () => grid.setQuality(session.quality));
session.addEventListener("videopaused", renderVideoPaused);
session.addEventListener("share", renderRoomControls);
session.addEventListener("consultation", (event) => openConsultation(event.detail));
session.addEventListener("participants", renderRoom);
session.addEventListener("remotetracks", renderRoom);
session.addEventListener("servererror", (event) => showServerError(event.detail));

media.addEventListener("change", () => {
  renderOwnVideo();
  renderControls();
  renderMediaMessages();
  renderDeviceSelects();
});
media.addEventListener("devices", renderDeviceSelects);

onLanguageChange(() => {
  renderBanner();
  renderCaseInfo();
  renderDeviceSelects();
  renderMediaMessages();
  renderControls();
  renderClosed();
  renderRecordingState();
  renderPauseReasons();
  grid.relabel();
  renderFloor();
  if (!$("room").hidden) renderRoom();
});

showScreen("prejoin");
renderPauseReasons();
renderBanner();
renderCaseInfo();
renderJoinButton();
renderControls();
renderDeviceSelects();

Promise.race([media.start(), new Promise((resolve) => setTimeout(resolve, MEDIA_START_WAIT_MS))]).then(() => {
  mediaReady = true;
  renderJoinButton();
  renderDeviceSelects();
});
