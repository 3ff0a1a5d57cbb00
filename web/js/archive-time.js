/**
 * Archive page: time arithmetic, no DOM. A timeline event is placed on the wall clock (UTC); a
 * playable file has its own media time. For a per-track file media time 0 is `playback.origin`
 * (wall seconds); the composite replaces each pause with a short title card, so its map is a list
 * of pieces `{wall, until, media, card}` from the server (see server/playback.py composite_map).
 */

/** Seconds since the epoch of an ISO 8601 string, or null. */
export function wallSeconds(iso) {
  if (typeof iso !== "string") return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms / 1000;
}

/** Media time (seconds) of wall-clock `wall` in a source: `{kind: "composite", map}` or `{origin}`. */
export function mediaTime(source, wall) {
  if (wall == null) return 0;
  if (source.kind === "composite") {
    const pieces = source.map ?? [];
    if (pieces.length === 0) return 0;
    if (wall <= pieces[0].wall) return 0;
    for (const piece of pieces) {
      if (wall < piece.until || piece === pieces[pieces.length - 1]) {
        const into = Math.max(0, wall - piece.wall);
        const length = piece.card ?? piece.until - piece.wall;
        return piece.media + Math.min(into, length);
      }
    }
  }
  return Math.max(0, wall - (source.origin ?? wall));
}

/** "HH:MM:SS" of wall-clock seconds in China Standard Time (the courts' clock, UTC+8). */
export function clockText(wall) {
  if (wall == null) return "--:--:--";
  const d = new Date((wall + 8 * 3600) * 1000);
  return d.toISOString().slice(11, 19);
}

/** "YYYY-MM-DD HH:MM" of an ISO string in China Standard Time. */
export function dateText(iso) {
  const wall = wallSeconds(iso);
  if (wall == null) return "—";
  return new Date((wall + 8 * 3600) * 1000).toISOString().slice(0, 16).replace("T", " ");
}
