"""Real browser against a real `streamlit run`: repair a damaged picture, paint a mask."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def _damage_percent(page) -> float:
    text = page.get_by_text(re.compile(r"The damage: [0-9.]+ %")).first.inner_text()
    return float(re.search(r"The damage: ([0-9.]+) %", text).group(1))


def test_repair_fill_in_damage(app_server, page, artifacts_dir):
    page.goto(app_server + "/Repair")
    page.get_by_text("Repair: fill in damage, clean up noise").wait_for()
    assert _damage_percent(page) > 5  # the default preset: missing blocks, about 10 %
    steps = page.get_by_label("Steps", exact=True)
    steps.fill("10")
    steps.press("Enter")
    button = page.get_by_role("button", name="Repair (10 model calls)")
    button.wait_for()
    button.click()
    page.get_by_text("Before the damage", exact=True).wait_for(timeout=180_000)
    page.get_by_text("PSNR compares with the picture before the damage").wait_for()
    assert page.get_by_text("Smooth fill (biharmonic)").count() >= 1
    page.get_by_role("heading", name="Result").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir / "repair.png"), full_page=True)


def test_repair_paint_a_box(app_server, page, artifacts_dir):
    page.goto(app_server + "/Repair")
    page.get_by_text("Paint the damage yourself").click()
    page.get_by_text("Clear the painted damage").wait_for()
    assert _damage_percent(page) == 0
    plot = page.locator(".js-plotly-plot .nsewdrag").first
    for _attempt in range(3):  # the chart may still be settling after the rerun: drag again
        plot.wait_for()
        page.wait_for_timeout(1000)
        box = plot.bounding_box()
        x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
        page.mouse.move(x0, y0)
        page.mouse.down()
        for k in range(1, 11):
            page.mouse.move(x0 + k * box["width"] * 0.03, y0 + k * box["height"] * 0.03)
        page.mouse.up()
        for _ in range(40):
            try:
                if _damage_percent(page) > 3:
                    break
            except Exception:  # noqa: BLE001 - the page is rerunning
                pass
            page.wait_for_timeout(250)
        else:
            continue
        break
    pct = _damage_percent(page)
    assert 3 < pct < 25, pct  # a box of about 30 % x 30 % of the picture
    page.screenshot(path=str(artifacts_dir / "repair_paint.png"), full_page=True)
