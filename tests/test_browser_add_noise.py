"""Real browser: the Add-noise page's strip download is the full-size strip, made when the
button is pressed (the page itself shows a smaller copy)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def test_strip_download_is_full_size(app_server, page):
    page.goto(app_server + "/Add_noise")
    page.frame_locator("iframe").first.locator("body[data-ready='1']").wait_for()
    button = page.get_by_role("button", name="Download this strip (PNG)")
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=60_000) as info:
        button.click()
    strip = Image.open(io.BytesIO(open(info.value.path(), "rb").read()))
    assert strip.format == "PNG"
    assert strip.width > 8 * 512 and strip.height > 512  # the 512 px sample, eight stages
    assert info.value.suggested_filename == "forward_linear_T1000_seed0.png"
    shown = page.locator("[data-testid='stImage'] img").last  # the copy on the page
    assert shown.evaluate("i => i.naturalWidth") < 8 * 300
