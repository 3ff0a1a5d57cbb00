"""What the composite render draws on its frames: fonts, text, the layouts and the burned-in clock.

How this works: OpenCV's Hershey fonts cannot draw Chinese, so :class:`TextPainter` rasterises
text with Pillow and a CJK font found by :func:`find_cjk_font` (``fc-list :lang=zh-cn``; Noto Sans
CJK SC preferred, WenQuanYi accepted) into an alpha mask, caches it, and blends it into a BGR
``uint8`` frame with numpy. Noto Sans CJK has no Tibetan, so a string is split into runs of Tibetan
(U+0F00–U+0FFF) and everything else, each drawn with its own font on one baseline: Tibetan with
:func:`find_tibetan_font` (the Tibetan Machine Uni the web pages serve, else ``fc-list :lang=bo``)
through raqm, which stacks the subjoined letters as the script requires. Without a Tibetan font the
Tibetan runs are left out of labels (a name that is only Tibetan falls back to the participant id)
rather than drawn as boxes. Without Pillow or a CJK font it draws with Hershey and drops what is not
ASCII (names fall back to participant ids), and says so in the log once. :func:`grid_layout` places
a banner (court and case number left, the wall clock right) over one equal tile per participant
track; :func:`spotlight_layout` puts the spotlighted participant's tiles large across the top and
the others in a band of small tiles beneath, as the hearing page does; :func:`clock_text` formats an
instant in China Standard Time (UTC+8, no daylight saving).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

logger = logging.getLogger(__name__)

# The font the hearing pages serve for Tibetan (GPL, licence beside it): FreeType reads WOFF2 when
# built with brotli, as Pillow's wheels and Debian's libfreetype6 are.
SHIPPED_TIBETAN_FONT = Path(__file__).resolve().parent.parent / "web/fonts/TibetanMachineUni.woff2"
CST = dt.timezone(dt.timedelta(hours=8), "UTC+8")  # China Standard Time: no daylight saving
BANNER_BGR = (64, 36, 20)
_TILE_ASPECT = 4 / 3  # what the grid is optimised for (webcams send 4:3 or 16:9)


@dataclass(frozen=True)
class FontFace:
    """A font file and the face index inside it (a ``.ttc`` holds several)."""

    path: Path
    index: int = 0


def _font_score(family: str, style: str) -> int:
    words = set(re.split(r"[\s,]+", family.lower()))
    score = 8 if ("sc" in words or "wenquanyi" in words or "wqy" in family.lower()) else 0
    score += 4 if ("sans" in words or "hei" in family.lower()) else 0
    score -= 6 if "mono" in words else 0
    score += 2 if "regular" in style.lower() or "book" in style.lower() else 0
    return score


def _fc_list(lang: str) -> list[tuple[FontFace, str, str]]:
    """``fc-list :lang=LANG``: (face, family, style) of each font; empty without fontconfig."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        listing = subprocess.run(
            [fc_list, f":lang={lang}", "--format=%{file}|%{index}|%{family}|%{style}\n"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    out = []
    for line in listing.splitlines():
        parts = line.split("|")
        if len(parts) == 4 and parts[1].isdigit():
            out.append((FontFace(Path(parts[0]), int(parts[1])), parts[2], parts[3]))
    return out


def find_cjk_font() -> FontFace | None:
    """The best installed font for Simplified Chinese, by ``fc-list :lang=zh-cn``, or None."""
    best: tuple[int, str, FontFace] | None = None
    for face, family, style in _fc_list("zh-cn"):
        candidate = (_font_score(family, style), str(face.path), face)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is not None:
        return best[2]
    # No fontconfig: the Debian locations of fonts-noto-cjk and fonts-wqy-*.
    for pattern, index in (("noto/NotoSansCJK-Regular.ttc", 2), ("wqy*/wqy-*.tt[cf]", 0)):
        for path in sorted(Path("/usr/share/fonts").glob(f"*/{pattern}")):
            return FontFace(path, index)
    return None


def _opens(face: FontFace) -> bool:
    """Whether FreeType (through Pillow) can read ``face``."""
    try:
        from PIL import ImageFont

        ImageFont.truetype(str(face.path), 16, index=face.index)
    except (ImportError, OSError, ValueError):
        return False
    return True


def find_tibetan_font() -> FontFace | None:
    """A font for Tibetan: the shipped Tibetan Machine Uni, else the best of ``fc-list :lang=bo``
    (Tibetan Machine Uni first, from the Debian package fonts-tibetan-machine), else None."""
    candidates = [FontFace(SHIPPED_TIBETAN_FONT)] if SHIPPED_TIBETAN_FONT.is_file() else []
    found = [
        ("tibetan machine uni" not in family.lower(), str(face.path), face)
        for face, family, _ in _fc_list("bo")
    ]
    candidates += [face for _, _, face in sorted(found, key=lambda x: x[:2])]
    for face in candidates:
        if _opens(face):
            return face
        logger.info("composite: cannot read the font %s: skipped", face.path)
    return None


def _is_tibetan(char: str) -> bool:
    return "\u0f00" <= char <= "\u0fff"


def script_runs(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into runs ``(tibetan, run)``; white space stays with the run it is in (or the
    one it leads into), so a name and its bracketed translation are two runs, not four."""
    runs: list[tuple[bool, str]] = []
    pending = ""  # leading white space, before the first run's script is known
    for char in text:
        if char.isspace():
            if runs:
                runs[-1] = (runs[-1][0], runs[-1][1] + char)
            else:
                pending += char
            continue
        tibetan = _is_tibetan(char)
        if runs and runs[-1][0] == tibetan:
            runs[-1] = (tibetan, runs[-1][1] + char)
        else:
            runs.append((tibetan, pending + char))
            pending = ""
    if pending:
        runs.append((False, pending))
    return runs


_ASCII_PUNCTUATION = str.maketrans({"–": "-", "—": "-", "·": "|", "、": ","})


def _ascii(text: str) -> str:
    """The ASCII part of ``text``: words in other scripts are dropped, and a run of them inside
    a word (a case number) becomes ``?``; empty when nothing alphanumeric is left."""
    folded = unicodedata.normalize("NFKC", text).translate(_ASCII_PUNCTUATION)  # （ -> (
    words = [re.sub(r"[^\x21-\x7e]+", "?", word) for word in folded.split()]
    kept = " ".join(word for word in words if word.strip("?"))
    return kept if re.search(r"[A-Za-z0-9]", kept) else ""


class TextPainter:
    """Draws text on BGR ``uint8`` images: any script through Pillow and a CJK font (Tibetan with
    a Tibetan font beside it), else ASCII.

    Rasterised strings are cached as alpha masks, so a label drawn every frame costs one blend.
    """

    def __init__(self, face: FontFace | None, tibetan: FontFace | None = None) -> None:
        self.face = face
        self.tibetan = tibetan if face is not None else None
        self._fonts: dict[tuple[FontFace, int], Any] = {}
        self._masks: dict[tuple[str, int], np.ndarray] = {}

    @classmethod
    def create(
        cls, font: Path | FontFace | None = None, tibetan: Path | FontFace | None = None
    ) -> TextPainter:
        """A painter with ``font`` (or the best CJK font found) and ``tibetan`` (or the Tibetan
        font found); ASCII-only without a usable CJK font, no Tibetan without a Tibetan font."""
        face = FontFace(font) if isinstance(font, Path) else font
        face = face or find_cjk_font()
        try:
            from PIL import features
        except ImportError:
            logger.warning("composite: Pillow is not installed: text is drawn in ASCII only")
            return cls(None)
        if face is None:
            logger.warning("composite: no CJK font (install fonts-noto-cjk): ASCII text only")
            return cls(None)
        bo = FontFace(tibetan) if isinstance(tibetan, Path) else tibetan
        bo = bo or find_tibetan_font()
        if bo is None:
            logger.warning(
                "composite: no Tibetan font (%s unreadable, none for fc-list :lang=bo; install "
                "fonts-tibetan-machine): Tibetan names are left out, ids shown instead",
                SHIPPED_TIBETAN_FONT,
            )
        elif not features.check("raqm"):
            logger.warning("composite: Pillow without raqm: Tibetan stacks are drawn unshaped")
        return cls(face, bo)

    @property
    def cjk(self) -> bool:
        """Whether Chinese text can be drawn."""
        return self.face is not None

    def label(self, text: str, fallback: str = "") -> str:
        """``text`` as it will be drawn: unchanged with a CJK font (and a Tibetan font when it
        holds Tibetan), else what of it can be drawn, else what of ``fallback`` can, else "?"."""
        if not self.cjk:
            return _ascii(text) or _ascii(fallback) or "?"
        if self.tibetan is not None:
            return text
        return self._without_tibetan(text) or self._without_tibetan(fallback) or "?"

    @staticmethod
    def _without_tibetan(text: str) -> str:
        if not any(map(_is_tibetan, text)):
            return text
        kept = " ".join("".join(run for bo, run in script_runs(text) if not bo).split())
        return kept if any(c.isalnum() for c in kept) else ""

    def mask(self, text: str, size: int) -> np.ndarray:
        """Alpha mask (``uint8``, line height tall) of ``text`` at ``size`` pixels."""
        key = (text, size)
        cached = self._masks.get(key)
        if cached is not None:
            return cached
        if len(self._masks) > 512:  # the clock adds a string a second; labels are few
            self._masks.clear()
        mask = self._pillow_mask(text, size) if self.face else self._hershey_mask(text, size)
        self._masks[key] = mask
        return mask

    def _font(self, face: FontFace, size: int) -> Any:
        from PIL import ImageFont, features

        font = self._fonts.get((face, size))
        if font is None:
            # Tibetan needs shaping (subjoined letters stack below the head letter): raqm.
            engine = None
            if face is self.tibetan and features.check("raqm"):
                engine = ImageFont.Layout.RAQM
            font = ImageFont.truetype(str(face.path), size, index=face.index, layout_engine=engine)
            self._fonts[(face, size)] = font
        return font

    def _pillow_mask(self, text: str, size: int) -> np.ndarray:
        """Each script's run with its own font, side by side on one baseline; the mask is as tall
        as the tallest of the fonts used (Tibetan Machine Uni reaches far below the baseline)."""
        from PIL import Image, ImageDraw, ImageFont

        assert self.face is not None
        runs = [
            (self._font(self.tibetan if bo and self.tibetan else self.face, size), run, bo)
            for bo, run in script_runs(text)
        ] or [(self._font(self.face, size), "", False)]
        ascent = max(font.getmetrics()[0] for font, _, _ in runs)
        descent = max(font.getmetrics()[1] for font, _, _ in runs)
        # the language picks Tibetan's shaping rules; only raqm takes one
        raqm = ImageFont.Layout.RAQM
        languages = ["bo" if bo and font.layout_engine == raqm else None for font, _, bo in runs]
        widths = [
            font.getlength(run, language=language)
            for (font, run, _), language in zip(runs, languages, strict=True)
        ]
        image = Image.new("L", (max(1, math.ceil(sum(widths))) + 2, ascent + descent))
        draw, x = ImageDraw.Draw(image), 1.0
        for (font, run, _), language, width in zip(runs, languages, widths, strict=True):
            draw.text((x, ascent), run, font=font, fill=255, anchor="ls", language=language)
            x += width
        return np.asarray(image, dtype=np.uint8)

    def _hershey_mask(self, text: str, size: int) -> np.ndarray:
        text, face = self.label(text), cv2.FONT_HERSHEY_SIMPLEX
        scale, thickness = size / 32, max(1, round(size / 14))
        (width, height), baseline = cv2.getTextSize(text, face, scale, thickness)
        mask = np.zeros((round(size * 1.2), width + 2 * thickness), np.uint8)
        top = (mask.shape[0] - height - baseline) // 2 + height
        cv2.putText(mask, text, (thickness, top), face, scale, 255, thickness, cv2.LINE_AA)
        return mask

    def draw(
        self,
        canvas: np.ndarray,
        text: str,
        x: int,
        y: int,
        size: int,
        color: tuple[int, int, int] = (255, 255, 255),
        *,
        right: bool = False,
        box: bool = False,
    ) -> None:
        """Blend ``text`` with its top-left (top-right if ``right``) at (x, y); clipped."""
        mask = self.mask(text, size)
        h, w = mask.shape
        if right:
            x -= w
        pad = max(2, size // 6)
        if box:  # a darkened box keeps a name legible on any picture
            bx0, by0 = max(0, x - pad), max(0, y - pad // 2)
            bx1, by1 = min(canvas.shape[1], x + w + pad), min(canvas.shape[0], y + h + pad // 2)
            if bx1 > bx0 and by1 > by0:
                np.right_shift(canvas[by0:by1, bx0:bx1], 1, out=canvas[by0:by1, bx0:bx1])
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(canvas.shape[1], x + w), min(canvas.shape[0], y + h)
        if x1 <= x0 or y1 <= y0:
            return
        alpha = mask[y0 - y : y1 - y, x0 - x : x1 - x, None].astype(np.uint16)
        roi = canvas[y0:y1, x0:x1]
        ink = np.array(color, np.uint16)
        roi[:] = ((roi * (255 - alpha) + ink * alpha + 127) // 255).astype(np.uint8)


def clock_text(wall: float) -> str:
    """The burned-in time of a wall-clock instant: ``2026-11-28 14:03:05 UTC+8``."""
    return dt.datetime.fromtimestamp(wall, CST).strftime("%Y-%m-%d %H:%M:%S UTC+8")


def draw_clock(canvas: np.ndarray, layout: Layout, painter: TextPainter, text: str) -> None:
    """Draw ``text`` (see :func:`clock_text`) right-aligned in ``layout``'s clock area."""
    clock, size = layout.clock, layout.text_size
    y = (clock.h - painter.mask(text, size).shape[0]) // 2 + clock.y
    painter.draw(canvas, text, clock.x + clock.w, y, size, right=True)


@dataclass(frozen=True)
class Rect:
    """A pixel rectangle."""

    x: int
    y: int
    w: int
    h: int

    def view(self, image: np.ndarray) -> np.ndarray:
        """The part of ``image`` this rectangle covers."""
        return image[self.y : self.y + self.h, self.x : self.x + self.w]


@dataclass(frozen=True)
class Layout:
    """Where things go on a composite frame."""

    width: int
    height: int
    banner: Rect
    title: Rect  # court and case number
    clock: Rect  # the burned-in wall-clock time, right-aligned inside
    tiles: tuple[Rect, ...]
    main: tuple[int, ...] = ()  # the spotlighted tiles (see spotlight_layout), if any

    @property
    def text_size(self) -> int:
        """Pixel size of the banner's text."""
        return max(12, round(self.banner.h * 0.5))


_GAP = 4  # pixels between tiles, and around them


def _banner(width: int, height: int) -> tuple[Rect, Rect, Rect]:
    """The banner across the top, with the title (court, case number) and clock areas in it."""
    banner = Rect(0, 0, width, max(24, round(height * 0.075)))
    margin = banner.h // 4
    title = Rect(margin, 0, round(width * 0.55) - margin, banner.h)
    clock = Rect(round(width * 0.55), 0, width - round(width * 0.55) - margin, banner.h)
    return banner, title, clock


def _pack(x: int, y: int, area_w: int, area_h: int, count: int) -> list[Rect]:
    """``count`` equal tiles in the area from (x, y), each cell a tile and the gap after it, in
    the grid of columns and rows that shows 4:3 pictures largest."""
    gap = _GAP
    best: tuple[float, int, int] = (-1.0, 1, 1)
    for cols in range(1, max(1, count) + 1):
        rows = math.ceil(max(1, count) / cols)
        tw, th = area_w / cols - gap, area_h / rows - gap
        shown = min(tw, th * _TILE_ASPECT) * min(th, tw / _TILE_ASPECT)
        if shown > best[0]:
            best = (shown, cols, rows)
    _, cols, rows = best
    tw, th = (area_w // cols - gap) & ~1, (area_h // rows - gap) & ~1
    return [
        Rect(x + (i % cols) * (tw + gap), y + (i // cols) * (th + gap), tw, th)
        for i in range(count)
    ]


def grid_layout(width: int, height: int, count: int) -> Layout:
    """A banner on top and ``count`` equal tiles below, in the grid that shows them largest."""
    banner, title, clock = _banner(width, height)
    top = banner.h + _GAP
    tiles = _pack(_GAP, top, width - _GAP, height - top - _GAP, count)
    return Layout(width, height, banner, title, clock, tuple(tiles))


def spotlight_layout(
    width: int, height: int, count: int, main: Sequence[int], band: float = 0.25
) -> Layout:
    """The tiles numbered in ``main`` (the spotlighted participant's) large across the top, the
    other tiles small in a band beneath, ``band`` of the height below the banner (the hearing
    page's spotlight, web/css/hearing.css); tiles keep their numbers. With no ``main`` tile it is
    :func:`grid_layout`; with no other tile the main ones take the whole area."""
    chosen = sorted({i for i in main if 0 <= i < count})
    if not chosen:
        return grid_layout(width, height, count)
    banner, title, clock = _banner(width, height)
    top = banner.h + _GAP
    area_w, area_h = width - _GAP, height - top - _GAP
    others = [i for i in range(count) if i not in chosen]
    band_h = round(area_h * band) if others else 0
    big = _pack(_GAP, top, area_w, area_h - band_h, len(chosen))
    small = _pack(_GAP, top + area_h - band_h, area_w, band_h, len(others))
    tiles = dict(zip(chosen + others, big + small, strict=True))
    ordered = tuple(tiles[i] for i in range(count))
    return Layout(width, height, banner, title, clock, ordered, tuple(chosen))
