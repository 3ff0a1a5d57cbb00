/**
 * The grid of remote participants: one tile per visible participant (observers get none), holding that
 * participant's video, audio, name, role and mute indicators.
 *
 * `render()` is idempotent: it takes the session's participants and the peer's mid -> track map and makes
 * the DOM match, creating, updating and removing tiles. Tracks and participants arrive in either order
 * (an offer can name a participant before `participant-joined` arrives), so the tile pulls its tracks
 * from the map each time instead of being pushed them once.
 *
 * On the presiding judge's page each tile also carries an eject button (two clicks: see confirm.js), a
 * mute button (the server stops forwarding that participant's sound) and a spotlight button. Every page
 * marks who holds the floor, who asks for it and who is silenced; the judge's and clerk's pages show a
 * connection-quality dot.
 *
 * The spotlight (PROTOCOL.md "The spotlight"): the spotlighted participant's tile is the main tile,
 * first and across the whole stage, the others small beneath it (`data-spotlight` on the grid and on
 * that tile; the layout is CSS).
 *
 * Under the name, a tile shows the court the participant is at (its invitation's) when that is not the
 * hearing's own court, and always in a cross-court hearing and a prefecture meeting, where where
 * someone is matters as much as who. Court names are data from the server (`courtName`, `courtNameEn`),
 * not page strings: the English name on English pages when the court has one, else the Chinese.
 */

import { TwoStepButton } from "./confirm.js";
import { getLanguage, t, tOr } from "./i18n.js";
import { INVISIBLE_ROLES } from "./session.js";

/** After an eject that did not take effect (refused by the server), the button works again after this. */
const EJECT_RETRY_MS = 5000;

export function roleLabel(role) {
  return role ? tOr(`role.${role}`, role) : "";
}

export function isVisible(participant) {
  return !INVISIBLE_ROLES.has(participant.role);
}

/** Kinds of hearing whose tiles always say which court each participant is at. */
const MANY_COURT_KINDS = new Set(["cross-court", "meeting"]);

/** The participant's court as the page's language names it ("" when the server sent none). */
export function courtLabel(participant) {
  if (getLanguage() === "en" && participant.courtNameEn) return participant.courtNameEn;
  return participant.courtName || participant.court || "";
}

/** Whether a tile shows the participant's court, in `hearing` ({court, kind}; null: not known yet). */
export function showsCourt(participant, hearing) {
  if (!participant.court) return false;
  return MANY_COURT_KINDS.has(hearing?.kind) || participant.court !== hearing?.court;
}

/** A tile's badge (`tile-badge tile-badge-<kind>`), hidden until its state says otherwise. */
function badge(kind, testid, hidden = true) {
  const el = document.createElement("span");
  el.className = `tile-badge tile-badge-${kind}`;
  el.dataset.testid = testid;
  el.hidden = hidden;
  return el;
}

export class ParticipantGrid {
  /**
   * @param {HTMLElement} container where tiles go
   * @param {object} [options]
   * @param {() => void} [options.onAudioBlocked] autoplay policy refused to play a participant's sound
   * @param {(participantId: string) => boolean} [options.onEject] the judge confirmed an eject; returns
   *   whether the command went out
   * @param {(participantId: string, muted: boolean) => void} [options.onMute] the judge (un)mutes someone
   * @param {(participantId: string | null) => void} [options.onSpotlight] the judge spotlights someone
   *   (null: clears the spotlight)
   */
  constructor(
    container,
    { onAudioBlocked = () => {}, onEject = () => false, onMute = () => {}, onSpotlight = () => {} } = {},
  ) {
    this.container = container;
    this.onAudioBlocked = onAudioBlocked;
    this.onEject = onEject;
    this.onMute = onMute;
    this.onSpotlight = onSpotlight;
    /** The spotlighted participant's id, or null. */
    this.spotlight = null;
    /** {holder, requests, silenced} (see session.js) and the ids the judge muted. */
    this.floor = { holder: null, requests: [], silenced: [] };
    this.mutedByJudge = new Set();
    /** participant id -> latest connection quality (judge and clerk). */
    this.quality = new Map();
    /** The hearing's court and kind ({court, kind} of `welcome.hearing`), or null. */
    this.hearing = null;
    /** Whether tiles show the eject button (the presiding judge's page). */
    this.canEject = false;
    /** participant id -> {el, video, audio, placeholder, name, role, mutedAudio, mutedVideo} */
    this.tiles = new Map();
    this.participants = new Map();
  }

  /**
   * @param {Map<string, object>} participants id -> participant
   * @param {Map<string, {participantId: string, kind: string, track: MediaStreamTrack}>} remoteTracks
   */
  render(participants, remoteTracks) {
    this.participants = participants;
    const visible = [...participants.values()].filter(isVisible);
    const ids = new Set(visible.map((p) => p.id));
    for (const [id, tile] of this.tiles) {
      if (!ids.has(id)) this.#removeTile(id, tile);
    }
    for (const participant of visible) {
      const tile = this.tiles.get(participant.id) ?? this.#createTile(participant);
      this.#updateTile(tile, participant, remoteTracks);
    }
    this.#updateSpotlightLayout();
  }

  /** The hearing (`welcome.hearing`): whose court is "here", and whether every tile names its court. */
  setHearing(hearing) {
    const next = hearing ? { court: hearing.court ?? null, kind: hearing.kind ?? null } : null;
    if (next?.court === this.hearing?.court && next?.kind === this.hearing?.kind) return;
    this.hearing = next;
    this.relabel();
  }

  /** Show or hide the eject buttons (they are for the presiding judge only). */
  setCanEject(canEject) {
    if (this.canEject === canEject) return;
    this.canEject = canEject;
    for (const tile of this.tiles.values()) {
      tile.actions.hidden = !canEject;
      tile.eject.disarm();
    }
  }

  /** The floor and the judge's mutes changed. */
  setFloor(floor, mutedByJudge) {
    this.floor = floor;
    this.mutedByJudge = mutedByJudge;
    for (const [id, tile] of this.tiles) this.#updateFloor(tile, id);
  }

  /** Whom everyone shows large (participant id), or null for the usual grid. */
  setSpotlight(participantId) {
    this.spotlight = participantId;
    for (const [id, tile] of this.tiles) this.#updateSpotlight(tile, id);
    this.#updateSpotlightLayout();
  }

  /** A participant's connection quality (a map id -> {level, rttMs, ...}). */
  setQuality(quality) {
    this.quality = quality;
    for (const [id, tile] of this.tiles) this.#updateQuality(tile, id);
  }

  /** Re-apply translated labels (language switch). */
  relabel() {
    for (const [id, tile] of this.tiles) {
      const participant = this.participants.get(id);
      if (participant) this.#updateLabels(tile, participant);
    }
  }

  /** Try again to play every participant's sound (after a click satisfied the autoplay policy). */
  resumeAudio() {
    for (const tile of this.tiles.values()) {
      if (tile.audio.srcObject) tile.audio.play().catch(() => {});
    }
  }

  clear() {
    for (const [id, tile] of this.tiles) this.#removeTile(id, tile);
    this.#updateSpotlightLayout();
  }

  #createTile(participant) {
    const el = document.createElement("div");
    el.className = "tile";
    el.dataset.testid = "participant-tile";
    el.dataset.participantId = participant.id;
    el.setAttribute("role", "group");

    const video = document.createElement("video");
    video.className = "tile-video";
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute("playsinline", "");
    // The picture is always muted: sound plays from the tile's own <audio>, so a blocked autoplay of
    // sound never stops the picture (muted video may always autoplay).
    video.muted = true;

    const audio = document.createElement("audio");
    audio.autoplay = true;
    audio.hidden = true;

    const placeholder = document.createElement("div");
    placeholder.className = "tile-placeholder";
    placeholder.setAttribute("aria-hidden", "true");
    const initial = document.createElement("span");
    initial.className = "tile-initial";
    const noVideo = document.createElement("span");
    noVideo.className = "tile-novideo";
    placeholder.append(initial, noVideo);

    const label = document.createElement("div");
    label.className = "tile-label";
    const name = document.createElement("span");
    name.className = "tile-name";
    const role = document.createElement("span");
    role.className = "tile-role";
    const mutedAudio = badge("audio", "participant-muted-audio", false);
    const mutedVideo = badge("video", "participant-muted-video", false);
    const quality = document.createElement("span");
    quality.className = "tile-quality";
    quality.dataset.testid = "quality-indicator";
    quality.setAttribute("role", "img");
    quality.hidden = true;
    const hasFloor = badge("floor", "participant-has-floor");
    const requesting = badge("request", "participant-requesting-floor");
    const silenced = badge("silenced", "participant-silenced");
    const spotlighted = badge("spotlight", "participant-spotlighted");
    // The court goes on a line of its own, under the name (a full-width flex item wraps it there).
    const courtLine = document.createElement("span");
    courtLine.className = "tile-court-line";
    const court = document.createElement("span");
    court.className = "tile-court";
    court.dataset.testid = "participant-court";
    courtLine.append(court);
    courtLine.hidden = true;
    label.append(quality, name, role, spotlighted, mutedAudio, mutedVideo, hasFloor, requesting, silenced, courtLine);

    const actions = document.createElement("div");
    actions.className = "tile-actions";
    actions.hidden = !this.canEject;
    const ejectButton = document.createElement("button");
    ejectButton.type = "button";
    ejectButton.className = "button tile-eject";
    ejectButton.dataset.testid = "eject-button";
    ejectButton.dataset.participantId = participant.id;
    const muteButton = document.createElement("button");
    muteButton.type = "button";
    muteButton.className = "button tile-eject tile-mute";
    muteButton.dataset.testid = "mute-participant-button";
    muteButton.dataset.participantId = participant.id;
    muteButton.setAttribute("aria-pressed", "false");
    muteButton.addEventListener("click", () => {
      this.onMute(participant.id, muteButton.getAttribute("aria-pressed") !== "true");
    });
    const spotlightButton = document.createElement("button");
    spotlightButton.type = "button";
    spotlightButton.className = "button tile-eject tile-spotlight";
    spotlightButton.dataset.testid = "spotlight-button";
    spotlightButton.dataset.participantId = participant.id;
    spotlightButton.setAttribute("aria-pressed", "false");
    spotlightButton.addEventListener("click", () => {
      this.onSpotlight(this.spotlight === participant.id ? null : participant.id);
    });
    actions.append(spotlightButton, muteButton, ejectButton);

    el.append(video, placeholder, label, actions, audio);
    this.container.append(el);

    const tile = { el, video, audio, placeholder, initial, noVideo, name, role, mutedAudio, mutedVideo, actions };
    Object.assign(tile, { quality, hasFloor, requesting, silenced, muteButton, spotlighted, spotlightButton });
    Object.assign(tile, { court, courtLine });
    tile.eject = new TwoStepButton(ejectButton, {
      onConfirm: () => this.#eject(tile, participant.id),
      render: (armed) => this.#labelEject(tile, armed),
    });
    // A remote track is `muted` while no media arrives on it (e.g. the sender's first keyframe is
    // still on its way): show the placeholder rather than a black box.
    tile.onTrackMute = () => this.#updateVideoVisibility(tile);
    this.tiles.set(participant.id, tile);
    return tile;
  }

  #updateTile(tile, participant, remoteTracks) {
    let cameraTrack = null;
    let screenTrack = null;
    let audioTrack = null;
    for (const entry of remoteTracks.values()) {
      if (entry.participantId !== participant.id) continue;
      if (entry.kind === "video") cameraTrack = entry.track;
      else if (entry.kind === "screen") screenTrack = entry.track;
      else if (entry.kind === "audio") audioTrack = entry.track;
    }
    // Evidence shown on a screen matters more to the court than the face of the person showing it.
    // (A separate, larger tile for shared screens is for later.)
    const videoTrack = screenTrack ?? cameraTrack;
    tile.el.dataset.showing = screenTrack ? "screen" : "camera";
    this.#setTrack(tile, tile.video, videoTrack);
    this.#setTrack(tile, tile.audio, audioTrack);
    tile.el.dataset.participantName = participant.name;
    tile.el.dataset.role = participant.role;
    tile.el.dataset.mutedAudio = String(participant.muted.audio);
    tile.el.dataset.mutedVideo = String(participant.muted.video);
    tile.el.dataset.hasAudio = String(audioTrack !== null);
    tile.mutedAudio.hidden = !participant.muted.audio;
    tile.mutedVideo.hidden = !participant.muted.video;
    this.#updateLabels(tile, participant);
    this.#updateVideoVisibility(tile, participant);
  }

  #updateFloor(tile, id) {
    const { holder, requests, silenced } = this.floor;
    const isSilenced = silenced.includes(id);
    tile.el.dataset.hasFloor = String(holder === id);
    tile.el.dataset.requestingFloor = String(requests.includes(id));
    tile.el.dataset.silenced = String(isSilenced);
    tile.hasFloor.hidden = holder !== id;
    tile.requesting.hidden = !requests.includes(id);
    tile.silenced.hidden = !isSilenced;
    // While no one holds the floor, `silenced` is exactly who the judge muted.
    const muted = this.mutedByJudge.has(id) || (holder === null && isSilenced);
    tile.muteButton.setAttribute("aria-pressed", String(muted));
    this.#labelMute(tile);
  }

  #updateSpotlight(tile, id) {
    const on = this.spotlight === id;
    tile.el.dataset.spotlight = String(on);
    tile.spotlighted.hidden = !on;
    tile.spotlightButton.setAttribute("aria-pressed", String(on));
    const name = this.participants.get(id)?.name ?? "";
    tile.spotlightButton.dataset.participantName = name;
    tile.spotlightButton.textContent = t(on ? "tile.unspotlight" : "tile.spotlight");
    tile.spotlightButton.setAttribute("aria-label", t(on ? "tile.unspotlightLabel" : "tile.spotlightLabel", { name }));
  }

  /** The grid's layout: a main tile only while the spotlighted participant has a tile here. */
  #updateSpotlightLayout() {
    const main = this.spotlight !== null && this.tiles.has(this.spotlight);
    this.container.dataset.spotlight = String(main);
  }

  #labelMute(tile) {
    const muted = tile.muteButton.getAttribute("aria-pressed") === "true";
    const name = this.participants.get(tile.el.dataset.participantId)?.name ?? "";
    tile.muteButton.textContent = t(muted ? "tile.unmuteParticipant" : "tile.muteParticipant");
    tile.muteButton.setAttribute("aria-label", t(muted ? "tile.unmuteParticipantLabel" : "tile.muteParticipantLabel", { name }));
  }

  #updateQuality(tile, id) {
    const q = this.quality.get(id);
    tile.quality.hidden = !q;
    if (!q) {
      tile.quality.removeAttribute("data-level");
      tile.quality.removeAttribute("title");
      tile.quality.removeAttribute("aria-label");
      return;
    }
    const level = t(`quality.${q.level}`);
    const figure = (v) => (v === null ? "–" : String(Math.round(v * 10) / 10));
    const title = t("quality.title", {
      level,
      rttMs: figure(q.rttMs),
      lossInPct: figure(q.lossInPct),
      lossOutPct: figure(q.lossOutPct),
      kbpsIn: figure(q.kbpsIn),
      kbpsOut: figure(q.kbpsOut),
    });
    tile.quality.dataset.level = q.level;
    tile.quality.title = title;
    tile.quality.setAttribute("aria-label", title);
  }

  #updateLabels(tile, participant) {
    const role = roleLabel(participant.role);
    const court = showsCourt(participant, this.hearing) ? courtLabel(participant) : "";
    const name = participant.name;
    let label = role ? t("tile.label", { name, role }) : name;
    if (court) label = t("tile.labelWithCourt", { name, role: role || "—", court });
    tile.el.setAttribute("aria-label", label);
    tile.el.dataset.court = participant.court ?? "";
    tile.court.textContent = court;
    tile.court.title = court ? t("tile.court", { court }) : "";
    tile.courtLine.hidden = court === "";
    tile.name.textContent = participant.name;
    tile.role.textContent = role;
    tile.role.hidden = role === "";
    // First character, by code point: a Chinese surname, or a Tibetan letter.
    tile.initial.textContent = Array.from(participant.name.trim())[0] ?? "";
    tile.noVideo.textContent = t("tile.noVideo");
    tile.mutedAudio.textContent = t("tile.mutedAudio");
    tile.mutedVideo.textContent = t("tile.mutedVideo");
    tile.hasFloor.textContent = t("tile.hasFloor");
    tile.requesting.textContent = t("tile.requestingFloor");
    tile.silenced.textContent = t("tile.silenced");
    tile.spotlighted.textContent = t("tile.spotlighted");
    this.#updateFloor(tile, participant.id);
    this.#updateSpotlight(tile, participant.id);
    this.#updateQuality(tile, participant.id);
    tile.eject.button.dataset.participantName = participant.name;
    tile.eject.refresh();
  }

  #labelEject(tile, armed) {
    const name = this.participants.get(tile.el.dataset.participantId)?.name ?? "";
    const button = tile.eject?.button;
    if (!button) return; // called once from the constructor, before `tile.eject` is set
    button.textContent = armed ? t("tile.ejectConfirm") : t("tile.eject");
    button.setAttribute("aria-label", t(armed ? "tile.ejectConfirmLabel" : "tile.ejectLabel", { name }));
  }

  #eject(tile, participantId) {
    if (!this.onEject(participantId)) return;
    // Sent: the tile goes when the server says the participant left. Should a refusal come instead
    // (shown as a toast), the button works again after a while.
    tile.eject.button.disabled = true;
    clearTimeout(tile.ejectTimer);
    tile.ejectTimer = setTimeout(() => {
      tile.eject.button.disabled = false;
    }, EJECT_RETRY_MS);
  }

  #updateVideoVisibility(tile, participant = this.participants.get(tile.el.dataset.participantId)) {
    const track = tile.video.srcObject?.getVideoTracks()[0] ?? null;
    // Camera off hides the camera, not a shared screen.
    const cameraOff = tile.el.dataset.showing !== "screen" && (participant?.muted.video ?? false);
    const showing = track !== null && !track.muted && !cameraOff;
    tile.el.dataset.hasVideo = String(showing);
    tile.placeholder.hidden = showing;
  }

  /** Put `track` (or nothing) into a media element, keeping the element if the track is unchanged. */
  #setTrack(tile, element, track) {
    const current = element.srcObject?.getTracks()[0] ?? null;
    if (current === track) return;
    if (current) {
      current.removeEventListener("mute", tile.onTrackMute);
      current.removeEventListener("unmute", tile.onTrackMute);
    }
    // A fresh MediaStream per track: the receiver's own stream membership changes as the server
    // reuses m-lines, and a stream we own holds exactly what this tile should play.
    element.srcObject = track ? new MediaStream([track]) : null;
    if (!track) return;
    if (track.kind === "video") {
      track.addEventListener("mute", tile.onTrackMute);
      track.addEventListener("unmute", tile.onTrackMute);
    }
    element.play().catch((err) => {
      if (err?.name === "NotAllowedError" && element === tile.audio) this.onAudioBlocked();
      else if (err?.name !== "AbortError") console.warn("[tiles] play() failed", err);
    });
  }

  #removeTile(id, tile) {
    tile.eject.disarm();
    clearTimeout(tile.ejectTimer);
    this.#setTrack(tile, tile.video, null);
    this.#setTrack(tile, tile.audio, null);
    tile.el.remove();
    this.tiles.delete(id);
  }
}
