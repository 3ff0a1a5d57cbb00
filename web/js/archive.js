/**
 * The archive page: sign in with an archivist token, search recordings, play one with seeking,
 * jump to a timeline event (joins, notes, pauses, exhibits), verify it on demand, download files and
 * exhibits, export.
 *
 * How this works: the token is kept in sessionStorage (or taken once from `#token=` in the address,
 * which never reaches the server) and sent as a bearer header on every API call. The recording
 * detail hands out file URLs with a short-lived media ticket, so `<video src>` and download links
 * work without the header; the server writes every listing, playback, download and export to its
 * audit log. Wall-clock ↔ media time: see archive-time.js.
 */

import { applyTranslations, bindLanguageSelect, initLanguage, onLanguageChange, t, tOr } from "./i18n.js";
import { clockText, dateText, mediaTime, wallSeconds } from "./archive-time.js";

const TOKEN_KEY = "tingshen.archive.token";
const $ = (id) => document.getElementById(id);

const state = { token: null, results: [], detail: null, sources: [], source: null, verify: null };

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, { method = "GET" } = {}) {
  let response;
  try {
    response = await fetch(path, { method, headers: { Authorization: `Bearer ${state.token}` } });
  } catch {
    throw new ApiError(0, "network", t("archive.error.network"));
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body?.error ?? {};
    throw new ApiError(response.status, error.code ?? "", error.message ?? "");
  }
  return body;
}

function showError(error) {
  const messages = {
    0: () => t("archive.error.network"),
    400: () => t("archive.error.badQuery", { message: error.message }),
    401: () => t("archive.error.unauthorized"),
    403: () => t("archive.error.forbidden"),
    404: () => t("archive.error.notFound"),
  };
  $("message").textContent = (messages[error.status] ?? (() => t("archive.error.server", { status: error.status })))();
  if (error.status === 401) signOut();
}

// -- sign in -------------------------------------------------------------------------------------

function readToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const fromHash = hash.get("token");
  if (fromHash) {
    history.replaceState(history.state, "", location.pathname + location.search);
    sessionStorage.setItem(TOKEN_KEY, fromHash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function signedIn(token) {
  state.token = token;
  $("sign-in").hidden = true;
  $("archive").hidden = false;
  $("sign-out").hidden = false;
  search();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  $("archive").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
}

// -- search --------------------------------------------------------------------------------------

async function search(event) {
  event?.preventDefault();
  const form = new FormData($("search-form"));
  const query = new URLSearchParams();
  for (const [name, value] of form) if (String(value).trim()) query.set(name, String(value).trim());
  $("result-count").textContent = t("archive.search.working");
  $("message").textContent = "";
  try {
    const found = await api(`/api/archive/recordings?${query}`);
    state.results = found.items;
    renderResults();
  } catch (error) {
    $("result-count").textContent = "";
    showError(error);
  }
}

function statusText(status) {
  return tOr(`archive.status.${status}`, status);
}

function renderResults() {
  const list = $("results");
  list.replaceChildren();
  $("result-count").textContent = state.results.length
    ? t("archive.results.count", { count: state.results.length })
    : t("archive.results.none");
  for (const item of state.results) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "result";
    button.dataset.testid = "archive-result";
    button.dataset.recordingId = item.id;
    button.setAttribute("aria-current", String(state.detail?.id === item.id));
    const line = (cls, text) => {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      button.append(span);
    };
    line("case", item.case_number ?? item.hearing_id);
    line("meta", `${item.court} · ${dateText(item.started_at)} · ${statusText(item.status)}`);
    const extra = [item.participants.join("、"), t("archive.result.segments", { count: item.segments })];
    if (item.sealed) extra.push(t("archive.result.sealed"));
    line("meta", extra.filter(Boolean).join(" · "));
    button.addEventListener("click", () => open(item.id));
    li.append(button);
    list.append(li);
  }
}

// -- one recording -------------------------------------------------------------------------------

async function open(recordingId) {
  $("message").textContent = "";
  try {
    state.detail = await api(`/api/archive/recordings/${encodeURIComponent(recordingId)}`);
  } catch (error) {
    showError(error);
    return;
  }
  state.verify = null;
  renderResults();
  renderDetail();
}

function buildSources(detail) {
  const sources = [];
  const playback = detail.playback;
  if (playback.composite) {
    sources.push({ id: "composite", kind: "composite", url: playback.composite, map: playback.composite_map });
  }
  for (const track of playback.tracks) {
    sources.push({ id: track.track_id, kind: track.kind, url: track.url, origin: playback.origin, name: track.participant_name });
  }
  // The composite first when this browser plays H.264 (it is MP4), then video, then audio tracks.
  const mp4 = document.createElement("video").canPlayType('video/mp4; codecs="avc1.42E01E"') !== "";
  const rank = (s) => (s.kind === "composite" ? (mp4 ? 0 : 2) : s.kind === "audio" ? 3 : 1);
  return sources.sort((a, b) => rank(a) - rank(b));
}

function sourceLabel(source) {
  if (source.kind === "composite") return t("archive.player.composite");
  return t("archive.player.track", { name: source.name, kind: source.kind });
}

function renderDetail() {
  const detail = state.detail;
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("detail-case").textContent = `${detail.case_number} · ${detail.court}`;
  $("detail-meta").textContent = [
    t("archive.detail.time", { start: dateText(detail.started_at), end: dateText(detail.ended_at) }),
    t("archive.detail.participants", { names: detail.participants.join("、") || "—" }),
    statusText(detail.status),
  ].join(" · ");
  state.sources = buildSources(detail);
  const select = $("source-select");
  select.replaceChildren();
  for (const source of state.sources) {
    const option = document.createElement("option");
    option.value = source.id;
    option.textContent = sourceLabel(source);
    select.append(option);
  }
  $("player-none").hidden = state.sources.length > 0;
  $("player").hidden = state.sources.length === 0;
  if (state.sources.length) choose(state.sources[0].id);
  renderIntegrity();
  renderTimeline();
  renderFiles();
  const exportLink = $("export-button");
  exportLink.href = detail.export_url;
  exportLink.setAttribute("download", `tingshen-${detail.id}.zip`);
}

function choose(id) {
  const source = state.sources.find((s) => s.id === id);
  if (!source) return;
  state.source = source;
  $("source-select").value = id;
  const player = $("player");
  player.dataset.source = id;
  player.src = source.url;
}

function eventLabel(event) {
  const data = event.data ?? {};
  const name = event.participant_name ?? data.name ?? data.participant ?? "";
  const reason = tOr(`archive.reason.${data.reason}`, data.reason ?? "");
  const role = data.role ? tOr(`role.${data.role}`, data.role) : "";
  const params = { name, reason, text: data.text ?? "", kind: event.kind, by: data.by ?? "", role };
  // Where someone joined from is on the timeline since invitations name their court.
  const court = data.courtName || data.court || "";
  if (event.kind === "join" && court) return t("archive.event.joinAtCourt", { ...params, court });
  return tOr(`archive.event.${event.kind}`, "") ? t(`archive.event.${event.kind}`, params) : t("archive.event.other", params);
}

function renderTimeline() {
  const list = $("timeline");
  list.replaceChildren();
  const events = state.detail.events.filter((e) => e.at);
  if (events.length === 0) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = t("archive.timeline.empty");
    list.append(li);
  }
  for (const event of events) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = `kind-${event.kind}`;
    button.dataset.testid = "timeline-event";
    button.dataset.kind = event.kind;
    const wall = wallSeconds(event.at);
    button.dataset.wall = String(wall);
    const time = document.createElement("time");
    time.dateTime = event.at;
    time.textContent = clockText(wall);
    const label = document.createElement("span");
    label.textContent = eventLabel(event);
    button.title = t("archive.timeline.seek", { time: clockText(wall) });
    button.append(time, label);
    button.addEventListener("click", () => seek(wall));
    li.append(button);
    if (event.kind === "exhibit") li.append(exhibitDetails(event.data ?? {}));
    list.append(li);
  }
}

/** Under an exhibit's timeline entry: its SHA-256, size and a download link (the file is served
 * by hash, with the recording's media ticket, as an attachment). */
function exhibitDetails(data) {
  const box = document.createElement("div");
  box.className = "exhibit";
  box.dataset.testid = "timeline-exhibit";
  box.dataset.sha256 = data.sha256 ?? "";
  const hash = document.createElement("code");
  hash.className = "exhibit-hash";
  hash.textContent = data.sha256 ?? "";
  hash.title = t("archive.exhibit.hash");
  const size = document.createElement("span");
  size.className = "exhibit-size";
  size.textContent = t("archive.exhibit.size", { size: data.bytes ?? "?" });
  box.append(hash, size);
  const registered = (state.detail.exhibits ?? []).find((e) => e.sha256 === data.sha256);
  if (registered) {
    const link = document.createElement("a");
    link.href = registered.url;
    link.dataset.testid = "exhibit-download";
    link.setAttribute("download", registered.name);
    link.textContent = t("archive.exhibit.download");
    box.append(link);
  }
  return box;
}

function seek(wall) {
  const player = $("player");
  if (!state.source) return;
  const target = mediaTime(state.source, wall);
  const go = () => {
    player.currentTime = Math.min(target, Number.isFinite(player.duration) ? player.duration : target);
    player.play().catch(() => {}); // autoplay may be refused; the position is set anyway
  };
  if (player.readyState >= 1) go();
  else player.addEventListener("loadedmetadata", go, { once: true });
}

function renderIntegrity() {
  const detail = state.detail;
  const badge = $("integrity-badge");
  const ok = state.verify ? state.verify.ok : detail.integrity.verify_ok;
  const key = ok == null ? "unknown" : ok ? "ok" : "failed";
  badge.dataset.state = key;
  badge.textContent = t(`archive.integrity.${key}`);
  const result = $("verify-result");
  result.replaceChildren();
  delete result.dataset.ok;
  if (state.verify) {
    result.dataset.ok = String(state.verify.ok);
    result.append(
      state.verify.ok
        ? t("archive.verify.ok", { segments: state.verify.segments })
        : t("archive.verify.failed", { count: state.verify.faults.length }),
    );
    if (state.verify.faults.length) {
      const ul = document.createElement("ul");
      for (const fault of state.verify.faults.slice(0, 20)) {
        const li = document.createElement("li");
        li.textContent = fault;
        ul.append(li);
      }
      result.append(ul);
    }
  }
}

async function verify() {
  const button = $("verify-button");
  button.disabled = true;
  $("verify-result").textContent = t("archive.verify.working");
  try {
    state.verify = await api(`/api/archive/recordings/${encodeURIComponent(state.detail.id)}/verify`, { method: "POST" });
  } catch (error) {
    $("verify-result").textContent = "";
    showError(error);
  } finally {
    button.disabled = false;
  }
  renderIntegrity();
}

function renderFiles() {
  const body = $("files");
  body.replaceChildren();
  for (const file of state.detail.files) {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    const link = document.createElement("a");
    link.href = `${file.url}&download=1`;
    link.textContent = file.name;
    link.title = t("archive.files.download");
    name.append(link);
    const hash = document.createElement("td");
    const code = document.createElement("code");
    code.textContent = file.sha256 ?? "";
    hash.append(code);
    const size = document.createElement("td");
    size.textContent = file.bytes ?? "";
    row.append(name, size, hash);
    body.append(row);
  }
}

// -- start ---------------------------------------------------------------------------------------

function start() {
  initLanguage();
  bindLanguageSelect($("language-select"));
  applyTranslations();
  onLanguageChange(() => {
    renderResults();
    if (state.detail) {
      const current = state.source?.id;
      const time = $("player").currentTime;
      renderDetail();
      if (current) choose(current);
      $("player").currentTime = time;
    }
  });
  $("search-form").addEventListener("submit", search);
  $("source-select").addEventListener("change", (e) => choose(e.target.value));
  $("verify-button").addEventListener("click", verify);
  $("sign-out").addEventListener("click", signOut);
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token-input").value = "";
    signedIn(token);
  });
  window.tingshenArchive = state; // for tests and the curious: read-only use
  const token = readToken();
  if (token) signedIn(token);
  else signOut();
}

start();
