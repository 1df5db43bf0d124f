"""Real browser against a real `streamlit run`: a short restore on the Restore page."""

from __future__ import annotations

import pytest

from tests.waiting import choose

pytestmark = pytest.mark.browser


def _set_steps(page, n: int) -> None:
    box = page.get_by_role("spinbutton", name="Steps", exact=True)
    box.fill(str(n))
    box.press("Enter")
    page.wait_for_function(
        "n => [...document.querySelectorAll('input')].some("
        "i => i.getAttribute('aria-label') === 'Steps' && i.value === String(n))", arg=n)


def test_restore_short_run(app_server, page, artifacts_dir):
    page.goto(app_server + "/Restore")
    run = page.get_by_role("button", name="▶ Run", exact=True)
    run.wait_for()
    # smallest working size: focus the size slider and press Home
    size = page.get_by_role("slider", name="Working size (longest side, pixels)")
    size.focus()
    size.press("Home")
    page.get_by_role("slider", name="Working size (longest side, pixels)").and_(
        page.locator("[aria-valuetext='128']")).wait_for()
    page.get_by_text("Resized from 512×512 to 128×128").wait_for()
    _set_steps(page, 3)
    page.get_by_text("where the run starts").wait_for()
    run.click()
    page.get_by_role("heading", name="The result").wait_for(timeout=180_000)
    for name in ("Animation (GIF)", "Animation (MP4)", "Stages (PNG strip)",
                 "Restored picture (PNG)", "Metrics (JSON)"):
        page.get_by_role("button", name=name).wait_for()
    page.get_by_text("Restored PSNR").wait_for()
    page.get_by_text("Step through the run").wait_for()
    assert page.get_by_text("3 of 3 steps requested").count() == 1
    assert page.locator(".stException").count() == 0
    # Streamlit scrolls inside its own container: a tall window shows the whole page
    page.set_viewport_size({"width": 1400, "height": 3600})
    page.wait_for_timeout(2000)  # let the images and the chart paint
    page.screenshot(path=str(artifacts_dir / "restore.png"), full_page=True)
    # a download really delivers a file
    with page.expect_download() as dl:
        page.get_by_role("button", name="Metrics (JSON)").click()
    assert dl.value.suggested_filename.endswith(".json")



def test_photo_model_from_pure_noise(app_server, page, artifacts_dir):
    """Generate mode with the shipped photo model (the overview + detail cascade): a 128 px
    picture from pure static with 12 DPM-Solver++ steps; the screenshot is looked at."""
    page.goto(app_server + "/Restore")
    page.get_by_role("button", name="▶ Run", exact=True).wait_for()
    page.get_by_text("Pure noise (generate)").click()
    page.wait_for_function(  # the page has rerun: the generate mode's list, digits first
        "() => { const b = [...document.querySelectorAll('input[aria-label=Model]')];"
        " return b.length === 1 && b[0].value === 'digits (shipped)'; }")
    choose(page, "Model", "natural (shipped)")
    page.get_by_text("The photo model").first.wait_for()
    page.get_by_text("Size of the invented picture").wait_for()
    choose(page, "Sampler", "DPM-Solver++ (2M), high-order")
    _set_steps(page, 12)
    page.get_by_role("button", name="▶ Run", exact=True).click()
    page.get_by_role("heading", name="The result").wait_for(timeout=180_000)
    page.get_by_text("from pure noise").first.wait_for()
    page.get_by_text("generated (12 steps)").wait_for()
    assert page.locator(".stException").count() == 0
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.wait_for_timeout(2000)  # let the images paint
    page.screenshot(path=str(artifacts_dir / "restore_photo_from_noise.png"), full_page=True)
