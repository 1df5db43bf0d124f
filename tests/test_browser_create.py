"""Real browser against a real `streamlit run`: the Create page draws a 7 with guidance."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_create_asks_for_a_seven(app_server, page, artifacts_dir):
    page.goto(app_server + "/Create")
    run = page.get_by_role("button", name="▶ Create", exact=True)
    run.wait_for()
    page.get_by_text("a 7", exact=True).first.click()
    page.get_by_text("asked for a 7 with guidance 3").wait_for()
    run.click()
    page.get_by_role("heading", name="What it drew").wait_for(timeout=180_000)
    page.get_by_role("heading", name="One picture, opened up").wait_for()
    page.get_by_role("heading", name="The guidance knob, turned").wait_for()
    for name in ("Grid (PNG)", "Animation (GIF)"):
        page.get_by_role("button", name=name).wait_for()
    assert page.locator(".stException").count() == 0
    page.set_viewport_size({"width": 1400, "height": 3000})
    page.wait_for_timeout(2000)  # let the images paint
    page.screenshot(path=str(artifacts_dir / "create.png"), full_page=True)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Grid (PNG)").click()
    assert dl.value.suggested_filename == "create_grid.png"
