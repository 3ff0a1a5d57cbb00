"""What the composite render draws on its frames: fonts, text, the grid and the burned-in clock.

How this works: OpenCV's Hershey fonts cannot draw Chinese, so :class:`TextPainter` rasterises
text with Pillow and a CJK font found by :func:`find_cjk_font` (``fc-list :lang=zh-cn``; Noto Sans
CJK SC preferred, WenQuanYi accepted) into an alpha mask, caches it, and blends it into a BGR
``uint8`` frame with numpy. Without Pillow or a CJK font it draws with Hershey and drops what is not
ASCII (names fall back to participant ids), and says so in the log once. :func:`grid_layout` places
a banner (court and case number left, the wall clock right) over one equal tile per participant
track; :func:`clock_text` formats an instant in China Standard Time (UTC+8, no daylight saving).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

logger = logging.getLogger(__name__)

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


def find_cjk_font() -> FontFace | None:
    """The best installed font for Simplified Chinese, by ``fc-list :lang=zh-cn``, or None."""
    fc_list = shutil.which("fc-list")
    best: tuple[int, str, FontFace] | None = None
    if fc_list is not None:
        try:
            listing = subprocess.run(
                [fc_list, ":lang=zh-cn", "--format=%{file}|%{index}|%{family}|%{style}\n"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        for line in listing.splitlines():
            parts = line.split("|")
            if len(parts) != 4 or not parts[1].isdigit():
                continue
            face = FontFace(Path(parts[0]), int(parts[1]))
            candidate = (_font_score(parts[2], parts[3]), str(face.path), face)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
    if best is not None:
        return best[2]
    # No fontconfig: the Debian locations of fonts-noto-cjk and fonts-wqy-*.
    for pattern, index in (("noto/NotoSansCJK-Regular.ttc", 2), ("wqy*/wqy-*.tt[cf]", 0)):
        for path in sorted(Path("/usr/share/fonts").glob(f"*/{pattern}")):
            return FontFace(path, index)
    return None


_ASCII_PUNCTUATION = str.maketrans({"–": "-", "—": "-", "·": "|", "、": ","})


def _ascii(text: str) -> str:
    """The ASCII part of ``text``: words in other scripts are dropped, and a run of them inside
    a word (a case number) becomes ``?``; empty when nothing alphanumeric is left."""
    folded = unicodedata.normalize("NFKC", text).translate(_ASCII_PUNCTUATION)  # （ -> (
    words = [re.sub(r"[^\x21-\x7e]+", "?", word) for word in folded.split()]
    kept = " ".join(word for word in words if word.strip("?"))
    return kept if re.search(r"[A-Za-z0-9]", kept) else ""


class TextPainter:
    """Draws text on BGR ``uint8`` images: any script through Pillow and a CJK font, else ASCII.

    Rasterised strings are cached as alpha masks, so a label drawn every frame costs one blend.
    """

    def __init__(self, face: FontFace | None) -> None:
        self.face = face
        self._fonts: dict[int, Any] = {}
        self._masks: dict[tuple[str, int], np.ndarray] = {}

    @classmethod
    def create(cls, font: Path | FontFace | None = None) -> TextPainter:
        """A painter with ``font`` (or the best CJK font found); ASCII-only when unusable."""
        face = FontFace(font) if isinstance(font, Path) else font
        face = face or find_cjk_font()
        try:
            import PIL.ImageFont  # noqa: F401  (optional: only needed for non-ASCII text)
        except ImportError:
            logger.warning("composite: Pillow is not installed: text is drawn in ASCII only")
            return cls(None)
        if face is None:
            logger.warning("composite: no CJK font (install fonts-noto-cjk): ASCII text only")
        return cls(face)

    @property
    def cjk(self) -> bool:
        """Whether Chinese text can be drawn."""
        return self.face is not None

    def label(self, text: str, fallback: str = "") -> str:
        """``text`` as it will be drawn: unchanged with a CJK font, else its ASCII part."""
        if self.cjk:
            return text
        return _ascii(text) or _ascii(fallback) or "?"

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

    def _pillow_mask(self, text: str, size: int) -> np.ndarray:
        from PIL import Image, ImageDraw, ImageFont

        assert self.face is not None
        font = self._fonts.get(size)
        if font is None:
            font = ImageFont.truetype(str(self.face.path), size, index=self.face.index)
            self._fonts[size] = font
        ascent, descent = font.getmetrics()
        image = Image.new("L", (max(1, math.ceil(font.getlength(text))) + 2, ascent + descent))
        ImageDraw.Draw(image).text((1, 0), text, font=font, fill=255)
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

    @property
    def text_size(self) -> int:
        """Pixel size of the banner's text."""
        return max(12, round(self.banner.h * 0.5))


def grid_layout(width: int, height: int, count: int) -> Layout:
    """A banner on top and ``count`` equal tiles below, in the grid that shows them largest."""
    banner = Rect(0, 0, width, max(24, round(height * 0.075)))
    top, gap = banner.h + 4, 4
    area_w, area_h = width - gap, height - top - gap
    best: tuple[float, int, int] = (-1.0, 1, 1)
    for cols in range(1, max(1, count) + 1):
        rows = math.ceil(max(1, count) / cols)
        tw, th = area_w / cols - gap, area_h / rows - gap
        shown = min(tw, th * _TILE_ASPECT) * min(th, tw / _TILE_ASPECT)
        if shown > best[0]:
            best = (shown, cols, rows)
    _, cols, rows = best
    tw, th = (area_w // cols - gap) & ~1, (area_h // rows - gap) & ~1
    tiles = tuple(
        Rect(gap + (i % cols) * (tw + gap), top + (i // cols) * (th + gap), tw, th)
        for i in range(count)
    )
    margin = banner.h // 4
    title = Rect(margin, 0, round(width * 0.55) - margin, banner.h)
    clock = Rect(round(width * 0.55), 0, width - round(width * 0.55) - margin, banner.h)
    return Layout(width, height, banner, title, clock, tiles)
