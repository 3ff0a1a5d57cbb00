/**
 * The hearing page (`/hearing?token=...`): the device check before joining, the room, and the screens
 * shown once the participant has left, the hearing ended, or joining failed.
 *
 * This module only wires the DOM. The protocol lives in `session.js` (WebSocket + reconnection) and
 * `peer.js` (offers and tracks), the camera and microphone in `media.js`, the tiles in `tiles.js`, and
 * every string in `i18n.js`. Each `render*` function redraws one part of the page from the current
 * state and is safe to call at any time, so a language switch simply calls them all again.
 */

import { bindLanguageSelect, initLanguage, onLanguageChange, t, tOr } from "./i18n.js";
import { LocalMedia } from "./media.js";
import { HearingSession, INVISIBLE_ROLES, OBSERVER_ROLE } from "./session.js";
import { isVisible, ParticipantGrid, roleLabel } from "./tiles.js";

const $ = (id) => document.getElementById(id);

/** getUserMedia can wait on a permission prompt; past this, joining is allowed anyway. */
const MEDIA_START_WAIT_MS = 8000;
const TOAST_MS = 8000;
const BANNER_STATES = new Set(["connecting", "connected", "reconnecting", "failed", "left", "ended"]);
const FINAL_STATES = new Set(["left", "ended", "failed"]);

initLanguage();
bindLanguageSelect($("language-select"));

const token = new URLSearchParams(location.search).get("token") ?? "";
const media = new LocalMedia();
const session = new HearingSession({ token, media });
const grid = new ParticipantGrid($("participant-grid"), { onAudioBlocked });

let mediaReady = false; // the first device request settled (or took too long)
let mediaBusy = false; // a device switch is in progress

// ---------------------------------------------------------------------------------------------------
// Debugging handle for tests: `await window.tingshen.pc.getStats()`. Getters, so it is always current.

Object.defineProperty(window, "tingshen", {
  value: Object.freeze({
    /** "prejoin", then the banner's states: connecting, connected, reconnecting, failed, left, ended. */
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
  for (const id of ["prejoin", "room", "closed"]) $(id).hidden = id !== name;
  document.body.dataset.screen = name;
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
  const court = hearing?.court != null ? String(hearing.court) : "";
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
  } else if (state === "failed") {
    title = t("closed.failed.title");
    if (info.reason === "replaced") {
      body = t("closed.replaced");
      canRejoin = true; // take the hearing back to this window, on purpose
    } else if (info.reason === "ejected") {
      body = t("closed.ejected");
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

$("join-button").addEventListener("click", () => {
  if (!token) return;
  showScreen("room");
  renderRoom();
  session.join();
});

$("rejoin-button").addEventListener("click", async () => {
  $("rejoin-button").disabled = true;
  await media.restart();
  showScreen("room");
  renderRoom();
  session.join();
});

// Leaving the page on purpose is a leave, not a drop: the others see "left" at once instead of
// waiting for the heartbeat to time out.
window.addEventListener("pagehide", () => {
  if (["connecting", "connected", "reconnecting"].includes(session.state)) session.leave();
});

// ---------------------------------------------------------------------------------------------------
// The room

function renderRoom() {
  grid.render(session.participants, session.remoteTracks);
  const all = [...session.participants.values()];
  const visible = all.filter(isVisible).length;
  const observers = all.filter((p) => p.role === OBSERVER_ROLE).length;
  $("room-waiting").hidden = visible > 0;
  $("observer-count").hidden = observers === 0;
  $("observer-count").textContent = observers > 0 ? t("room.observers", { n: observers }) : "";
  renderControls();
  renderOwnVideo();
}

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
    renderClosed();
    showScreen("closed");
  }
});
session.addEventListener("retry", renderBanner);
session.addEventListener("welcome", () => {
  if (INVISIBLE_ROLES.has(session.self?.role)) media.stop(); // an observer's camera has nowhere to go
  renderCaseInfo();
  renderRoom();
});
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
  grid.relabel();
  if (!$("room").hidden) renderRoom();
});

showScreen("prejoin");
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
