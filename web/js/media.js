/**
 * The participant's own camera and microphone.
 *
 * `LocalMedia` holds at most one audio and one video track, the device chosen for each, the reason a
 * device could not be opened, and the participant's own mute state. It outlives reconnections: a new
 * peer connection attaches the same tracks, so a reconnect neither prompts again nor loses the mute.
 *
 * A failed device never blocks joining: `start()` and `selectDevice()` resolve in every case and record
 * the reason in `errors[kind]` (`insecure`, `unsupported`, `denied`, `notFound`, `inUse`, `failed`).
 */

export const KINDS = ["audio", "video"];

// Sized for the thin county links: the server forwards without transcoding, so what we capture is what
// every other participant receives. 640x480 at up to 30 fps is the size the relay is measured at.
const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30, max: 30 } };
const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

const STORAGE_PREFIX = "tingshen.device.";
const INPUT_KIND = { audio: "audioinput", video: "videoinput" };

/** Map a getUserMedia error to one of our reason codes (each has a `media.<kind>.<reason>` string). */
function classify(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "denied";
    case "NotFoundError":
    case "OverconstrainedError":
      return "notFound";
    case "NotReadableError":
    case "AbortError":
      return "inUse";
    default:
      return "failed";
  }
}

function remembered(kind) {
  try {
    return localStorage.getItem(STORAGE_PREFIX + kind);
  } catch {
    return null;
  }
}

function remember(kind, deviceId) {
  try {
    localStorage.setItem(STORAGE_PREFIX + kind, deviceId);
  } catch {
    // not remembered; fine
  }
}

/**
 * Events: `change` (tracks, errors or mute changed), `devices` (the device lists changed).
 */
export class LocalMedia extends EventTarget {
  constructor() {
    super();
    this.tracks = { audio: null, video: null };
    this.errors = { audio: null, video: null };
    this.muted = { audio: false, video: false };
    /** Chosen device per kind: a deviceId, "" for "do not use", or null for the browser's default. */
    this.choice = { audio: remembered("audio"), video: remembered("video") };
    /** Known input devices per kind: [{deviceId, label}] (labels are empty until permission is given). */
    this.devices = { audio: [], video: [] };
    this.#listenForDeviceChanges();
  }

  /** Why no device can be used at all on this page, or null. */
  static unavailableReason() {
    if (!window.isSecureContext) return "insecure";
    if (!navigator.mediaDevices?.getUserMedia) return "unsupported";
    return null;
  }

  /** Open the chosen devices (both in one prompt), then list the devices. Never rejects. */
  async start() {
    const reason = LocalMedia.unavailableReason();
    if (reason) {
      this.errors = { audio: reason, video: reason };
      this.#changed();
      return;
    }
    const wanted = KINDS.filter((kind) => this.choice[kind] !== "");
    if (wanted.length > 0) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia(this.#constraints(wanted));
        for (const track of stream.getTracks()) this.#setTrack(track.kind, track);
      } catch (err) {
        // The joint request failed: ask for each kind alone, so a missing camera does not cost the
        // microphone (or the reverse), and each gets its own message.
        console.warn("[media] getUserMedia failed for", wanted, err);
        for (const kind of wanted) await this.#acquire(kind);
      }
    }
    await this.refreshDevices();
    this.#changed();
  }

  /** Switch one kind to `deviceId` ("" = do not use). Re-acquires that device only. Never rejects. */
  async selectDevice(kind, deviceId) {
    this.choice[kind] = deviceId;
    remember(kind, deviceId);
    this.#setTrack(kind, null);
    this.errors[kind] = null;
    // Stop first, then open: many cameras cannot be opened twice at once.
    if (deviceId !== "" && !LocalMedia.unavailableReason()) await this.#acquire(kind);
    await this.refreshDevices();
    this.#changed();
  }

  /** The participant's own mute: disables the track (it keeps flowing as silence / black). */
  setMuted(kind, muted) {
    this.muted[kind] = muted;
    if (this.tracks[kind]) this.tracks[kind].enabled = !muted;
    this.#changed();
  }

  /** The device the current track really uses (the browser may pick another than asked). */
  activeDeviceId(kind) {
    const track = this.tracks[kind];
    if (!track) return this.choice[kind] === "" ? "" : null;
    return track.getSettings?.().deviceId ?? null;
  }

  /** Stop every track (leaving, or the hearing ended): the camera light goes off. */
  stop() {
    for (const kind of KINDS) this.#setTrack(kind, null);
    this.#changed();
  }

  /** Re-open devices after `stop()` (rejoin after leaving). */
  async restart() {
    this.errors = { audio: null, video: null };
    await this.start();
  }

  async refreshDevices() {
    if (!navigator.mediaDevices?.enumerateDevices) return;
    let list;
    try {
      list = await navigator.mediaDevices.enumerateDevices();
    } catch (err) {
      console.warn("[media] enumerateDevices failed", err);
      return;
    }
    for (const kind of KINDS) {
      // Before permission the browser lists placeholders with an empty deviceId: not selectable.
      this.devices[kind] = list
        .filter((d) => d.kind === INPUT_KIND[kind] && d.deviceId !== "")
        .map((d) => ({ deviceId: d.deviceId, label: d.label }));
    }
    this.dispatchEvent(new Event("devices"));
  }

  async #acquire(kind) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(this.#constraints([kind]));
      this.#setTrack(kind, stream.getTracks().find((track) => track.kind === kind) ?? null);
      this.errors[kind] = this.tracks[kind] ? null : "failed";
    } catch (err) {
      console.warn(`[media] cannot open ${kind}`, err);
      this.errors[kind] = classify(err);
    }
  }

  #constraints(kinds) {
    const result = { audio: false, video: false };
    for (const kind of kinds) {
      const base = kind === "audio" ? AUDIO_CONSTRAINTS : VIDEO_CONSTRAINTS;
      const id = this.choice[kind];
      // `ideal`, not `exact`: a remembered device that was unplugged falls back to another one
      // instead of failing.
      result[kind] = id ? { ...base, deviceId: { ideal: id } } : { ...base };
    }
    return result;
  }

  #setTrack(kind, track) {
    const old = this.tracks[kind];
    if (old && old !== track) old.stop();
    this.tracks[kind] = track;
    if (track) {
      track.enabled = !this.muted[kind];
      // Unplugged mid-hearing: drop the track and say so; the sender then sends nothing.
      track.addEventListener("ended", () => {
        if (this.tracks[kind] !== track) return;
        this.tracks[kind] = null;
        this.errors[kind] = "failed";
        this.#changed();
      });
    }
  }

  #listenForDeviceChanges() {
    navigator.mediaDevices?.addEventListener?.("devicechange", () => {
      this.refreshDevices();
    });
  }

  #changed() {
    this.dispatchEvent(new Event("change"));
  }
}
