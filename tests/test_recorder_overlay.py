"""Frame overlay: CJK text with a fallback to ASCII, the grid, the clock (recorder.overlay)."""

from __future__ import annotations

import numpy as np
import pytest

from recorder.overlay import (
    BANNER_BGR,
    TextPainter,
    clock_text,
    draw_clock,
    find_cjk_font,
    grid_layout,
)

CASE = "（2026）川33民初7号"


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
