"""Static files under /static/: fonts get their content type and a long cache life, nothing else changes."""

from __future__ import annotations

import aiohttp

from tests.conftest import RunningServer

FONT = "/static/fonts/TibetanMachineUni.woff2"


async def test_font_type_and_cache(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(server.base_url + FONT + "?v=1.901b") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "font/woff2"
            assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert (await response.read())[:4] == b"wOF2"  # a WOFF2 font
            etag = response.headers["ETag"]
        async with session.get(server.base_url + FONT, headers={"If-None-Match": etag}) as response:
            assert response.status == 304
            assert "max-age=31536000" in response.headers["Cache-Control"]
        licence = server.base_url + "/static/fonts/TibetanMachineUni.LICENSE"
        async with session.get(licence) as response:
            assert response.status == 200
            assert "GPL" in await response.text()


async def test_other_static_files_unchanged(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(server.base_url + "/static/fonts/missing.ttf") as response:
            assert response.status == 404
            assert "Cache-Control" not in response.headers  # a gap is not cached for a year
        async with session.get(server.base_url + "/static/css/hearing.css") as response:
            assert response.status == 200
            assert response.content_type == "text/css"
            assert "Cache-Control" not in response.headers
