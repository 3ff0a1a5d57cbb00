"""Frame overlay: CJK and Tibetan text with a fallback to ASCII, the layouts, the clock
(recorder.overlay)."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageFont, features

from recorder import overlay
from recorder.overlay import (
    BANNER_BGR,
    SHIPPED_TIBETAN_FONT,
    FontFace,
    Layout,
    TextPainter,
    clock_text,
    draw_clock,
    find_cjk_font,
    find_tibetan_font,
    grid_layout,
    script_runs,
    spotlight_layout,
)

CASE = "（2026）川33民初7号"
TASHI = "བཀྲ་ཤིས།"  # Tashi, a Tibetan given name


def test_clock_is_china_standard_time() -> None:
    assert clock_text(1_764_309_780.0) == "2025-11-28 14:03:00 UTC+8"
    assert clock_text(1_764_309_780.999) == "2025-11-28 14:03:00 UTC+8"  # floors, never rounds up
    assert clock_text(1_764_345_599.0) == "2025-11-28 23:59:59 UTC+8"
    assert clock_text(1_764_345_600.0) == "2025-11-29 00:00:00 UTC+8"  # 16:00 UTC


def test_a_cjk_font_is_installed_and_draws_chinese() -> None:
    face = find_cjk_font()
    assert face is not None, "no CJK font: apt-get install fonts-noto-cjk"
    assert face.path.is_file()
    painter = TextPainter.create()
    assert painter.cjk and painter.label("张三", "p1") == "张三"
    one, two = painter.mask("张三", 24), painter.mask("李四", 24)
    assert one.max() == 255 and one.shape == two.shape and not np.array_equal(one, two)


def test_text_falls_back_to_ascii_without_a_cjk_font() -> None:
    ascii_only = TextPainter(None)
    assert not ascii_only.cjk
    assert ascii_only.label("审判长 张三", "p1") == "p1"
    assert ascii_only.label("审判长 Judge Wang", "p1") == "Judge Wang"
    assert ascii_only.label(CASE) == "(2026)?33?7?"
    assert ascii_only.label("休庭 recess") == "recess"
    assert ascii_only.label("14:03:02–14:18:02 UTC+8") == "14:03:02-14:18:02 UTC+8"
    assert ascii_only.label("张三") == "?"
    assert ascii_only.mask("(2026)?33?7?", 20).max() == 255


@pytest.mark.parametrize(("count", "grid"), [(1, (1, 1)), (2, (2, 1)), (3, (2, 2)), (5, (3, 2))])
def test_grid_tiles_fit_below_the_banner_without_overlap(count: int, grid: tuple[int, int]) -> None:
    layout = grid_layout(1280, 720, count)
    assert len(layout.tiles) == count
    assert len({t.x for t in layout.tiles}) == min(count, grid[0])
    assert len({t.y for t in layout.tiles}) == grid[1]
    for i, tile in enumerate(layout.tiles):
        assert tile.y >= layout.banner.h and tile.x + tile.w <= 1280 and tile.y + tile.h <= 720
        assert tile.w % 2 == 0 and tile.h % 2 == 0
        for other in layout.tiles[i + 1 :]:
            apart = tile.x + tile.w <= other.x or other.x + other.w <= tile.x
            assert apart or tile.y + tile.h <= other.y or other.y + other.h <= tile.y
    assert layout.clock.x >= layout.title.x + layout.title.w


def test_clock_is_drawn_right_aligned_in_its_area() -> None:
    layout = grid_layout(640, 360, 2)
    canvas = np.zeros((360, 640, 3), np.uint8)
    layout.banner.view(canvas)[:] = BANNER_BGR
    draw_clock(canvas, layout, TextPainter.create(), clock_text(1_764_309_780.0))
    ink = np.argwhere(canvas.max(axis=2) > 200)
    assert len(ink) > 100
    assert ink[:, 0].max() < layout.banner.h  # inside the banner
    assert ink[:, 1].min() >= layout.clock.x and ink[:, 1].max() < layout.clock.x + layout.clock.w
    assert ink[:, 1].max() > layout.clock.x + layout.clock.w - 20  # flush right


def assert_apart(layout: Layout) -> None:
    for i, tile in enumerate(layout.tiles):
        assert tile.y >= layout.banner.h and tile.x >= 0 and tile.w > 0 and tile.h > 0
        assert tile.x + tile.w <= layout.width and tile.y + tile.h <= layout.height
        assert tile.w % 2 == 0 and tile.h % 2 == 0
        for other in layout.tiles[i + 1 :]:
            apart = tile.x + tile.w <= other.x or other.x + other.w <= tile.x
            assert apart or tile.y + tile.h <= other.y or other.y + other.h <= tile.y


@pytest.mark.parametrize(("count", "main"), [(2, [0]), (3, [1]), (5, [4]), (12, [5]), (4, [1, 3])])
def test_spotlight_puts_the_main_tiles_large_above_a_band_of_small_ones(
    count: int, main: list[int]
) -> None:
    layout = spotlight_layout(1280, 720, count, main)
    assert len(layout.tiles) == count and layout.main == tuple(main)
    assert_apart(layout)
    big = [layout.tiles[i] for i in main]
    small = [t for i, t in enumerate(layout.tiles) if i not in main]
    band_top = min(t.y for t in small)
    assert all(t.y + t.h < band_top for t in big)  # the main tiles first, the band beneath
    assert min(t.h for t in big) > 2.5 * max(t.h for t in small)
    if len(main) == 1:  # across the whole width, like the hearing page's main tile
        assert big[0].w >= 1280 - 8
    grid = grid_layout(1280, 720, count)
    assert big[0].w * big[0].h > 1.5 * grid.tiles[0].w * grid.tiles[0].h
    assert (layout.banner, layout.title, layout.clock) == (grid.banner, grid.title, grid.clock)


def test_spotlight_without_a_main_tile_is_the_grid_and_alone_takes_the_area() -> None:
    assert spotlight_layout(640, 360, 3, []) == grid_layout(640, 360, 3)
    assert spotlight_layout(640, 360, 3, [7]) == grid_layout(640, 360, 3)  # no such tile
    alone = spotlight_layout(640, 360, 1, [0])
    assert alone.tiles == grid_layout(640, 360, 1).tiles and alone.main == (0,)


def ink_columns(mask: np.ndarray) -> int:
    columns = np.flatnonzero(mask.max(axis=0) > 128)
    return int(columns[-1] - columns[0] + 1) if len(columns) else 0


def ink_bottom(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.max(axis=1) > 128)[-1])


def test_the_shipped_tibetan_font_is_readable_and_shaped_by_raqm() -> None:
    assert features.check("raqm"), "Pillow without raqm: Tibetan stacks cannot be shaped"
    assert find_tibetan_font() == FontFace(SHIPPED_TIBETAN_FONT)  # WOFF2, read by FreeType
    painter = TextPainter.create()
    assert painter.tibetan == FontFace(SHIPPED_TIBETAN_FONT)
    assert painter._font(painter.tibetan, 24).layout_engine == ImageFont.Layout.RAQM


def test_tibetan_is_drawn_in_its_letters_not_as_boxes() -> None:
    painter = TextPainter.create()
    assert painter.tibetan is not None and painter.label(TASHI, "p1") == TASHI
    tofu = TextPainter(painter.face)  # the CJK font alone: no Tibetan glyph in it
    # the test can see tofu: without a Tibetan font any two letters are the same .notdef box
    assert np.array_equal(tofu.mask("ཀ", 32), tofu.mask("ཤ", 32))
    box = tofu.mask("ཀ", 32).shape[1] - 2  # the box's advance
    syllables = ["བཀྲ", "ཤིས", "བདེ", "ལེགས", "ཀ", "ཤ"]
    masks = {s: painter.mask(s, 32) for s in syllables}
    for one, two in itertools.combinations(syllables, 2):
        a, b = masks[one], masks[two]
        assert a.shape != b.shape or not np.array_equal(a, b), (one, two)
    for syllable, mask in masks.items():
        assert mask.max() == 255, syllable
        assert mask.shape[1] - 2 != len(syllable) * box, syllable  # not boxes side by side
    name = painter.mask(TASHI, 32)
    assert name.shape[1] < tofu.mask(TASHI, 32).shape[1] / 2  # 3 stacks and marks, not 8 boxes


def test_tibetan_stacks_are_shaped_one_letter_below_the_other() -> None:
    painter, size = TextPainter.create(), 64
    # sa; sa with subjoined ga; sa with subjoined ga and subjoined ra: one stack, one letter wide
    head, two, three = (painter.mask(s, size) for s in ("ས", "སྒ", "སྒྲ"))
    assert abs(three.shape[1] - head.shape[1]) <= 2  # advance: one letter, not three in a row
    assert abs(ink_columns(three) - ink_columns(head)) <= 3
    # shaped (raqm), each subjoined letter hangs below the one above it; unshaped, the ra is
    # drawn over the ga and the stack ends where the ga does
    assert ink_bottom(two) - ink_bottom(head) > size / 4
    assert ink_bottom(three) - ink_bottom(two) > size / 16


def test_mixed_tibetan_and_chinese_draws_each_with_its_font() -> None:
    painter = TextPainter.create()
    assert script_runs(f"{TASHI} (扎西)") == [(True, f"{TASHI} "), (False, "(扎西)")]
    assert script_runs(" 证人 བཀྲ x") == [(False, " 证人 "), (True, "བཀྲ "), (False, "x")]
    mixed = painter.mask(f"{TASHI} (扎西)", 32)
    tibetan, chinese = painter.mask(f"{TASHI} ", 32), painter.mask("(扎西)", 32)
    assert mixed.shape[0] == tibetan.shape[0] >= chinese.shape[0]  # the taller font's line
    assert abs(mixed.shape[1] - (tibetan.shape[1] + chinese.shape[1] - 4)) <= 2
    split = tibetan.shape[1] - 2
    # the Tibetan run as drawn alone; the Chinese run beside it as drawn alone, on one baseline
    assert np.abs(mixed[:, :split].astype(int) - tibetan[:, :split]).max() <= 1
    right = mixed[:, split:]
    assert abs(ink_columns(right) - ink_columns(chinese)) <= 1
    assert right.astype(int).sum() == pytest.approx(int(chinese.astype(int).sum()), rel=0.05)
    assert painter.tibetan is not None and painter.face is not None
    ascents = [painter._font(face, 32).getmetrics()[0] for face in (painter.tibetan, painter.face)]
    shift = max(ascents) - ascents[1]
    rows, chinese_rows = (np.flatnonzero(m.max(axis=1) > 128) for m in (right, chinese))
    assert (rows[0], rows[-1]) == (chinese_rows[0] + shift, chinese_rows[-1] + shift)


def test_without_a_tibetan_font_tibetan_is_left_out_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "TibetanMachineUni.woff2"
    broken.write_bytes(b"wOF2 not really")
    monkeypatch.setattr(overlay, "SHIPPED_TIBETAN_FONT", broken)
    monkeypatch.setattr(overlay.shutil, "which", lambda name: None)  # no fontconfig either
    assert find_tibetan_font() is None
    with caplog.at_level(logging.WARNING, logger="recorder.overlay"):
        painter = TextPainter.create()
    assert painter.cjk and painter.tibetan is None
    assert "no Tibetan font" in caplog.text and "fonts-tibetan-machine" in caplog.text
    assert painter.label(TASHI, "p7") == "p7"
    assert painter.label(f"{TASHI} (扎西)", "p7") == "(扎西)"
    assert painter.label(f"证人 {TASHI}", "p7") == "证人"
    assert painter.label("审判长 张三", "p1") == "审判长 张三"
    assert TextPainter(None, FontFace(SHIPPED_TIBETAN_FONT)).label(TASHI, "p7") == "p7"
