"""Real browser against a real `streamlit run`: on the Create page, pick each world, ask for
something in it, run, and see the grid (screenshots under tests/artifacts/create_*.png)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

#: (world as the picker shows it, what to ask for as the menu shows it, screenshot name)
WORLDS = [("Clothes", "a sneaker", "create_clothes"), ("Digits", "a 7", "create_digits"),
          ("Doodles", "a cat", "create_doodles")]


@pytest.mark.parametrize("world,ask,shot", WORLDS, ids=[w[0] for w in WORLDS])
def test_create_draws_what_is_asked_in_each_world(app_server, page, artifacts_dir, world, ask,
                                                  shot):
    page.goto(app_server + "/Create")
    # the server path (browser mode, the default where it can: tests/test_browser_web_create.py)
    page.get_by_text("the server", exact=True).click()
    run = page.get_by_role("button", name="▶ Create", exact=True)
    run.wait_for()
    page.get_by_text(world, exact=True).first.click()
    page.get_by_text(ask, exact=True).first.click()
    page.get_by_text(f"asked for {ask} with guidance 3").wait_for()
    # the class pictures beside "what to draw" are shown (one per class, with its name)
    assert page.get_by_role("img").count() >= 6
    run.click()
    page.get_by_role("heading", name="What it drew").wait_for(timeout=180_000)
    page.get_by_role("heading", name="One picture, opened up").wait_for()
    page.get_by_role("heading", name="The guidance knob, turned").wait_for()
    for name in ("Grid (PNG)", "Animation (GIF)"):
        page.get_by_role("button", name=name).wait_for()
    assert page.locator(".stException").count() == 0
    page.set_viewport_size({"width": 1400, "height": 3000})
    page.wait_for_timeout(2000)  # let the images paint
    page.screenshot(path=str(artifacts_dir / f"{shot}.png"), full_page=True)
    # the finished 4 x 4 grid fills the main column: each sample is at least 96 px on screen
    widths = page.eval_on_selector_all(
        "[data-testid='stImage'] img", "els => els.map(e => e.getBoundingClientRect().width)")
    assert max(widths) >= 4 * 96, widths
    with page.expect_download() as dl:
        page.get_by_role("button", name="Grid (PNG)").click()
    assert dl.value.suggested_filename == "create_grid.png"
