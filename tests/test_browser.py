"""Real browser against a real `streamlit run`: upload, scrub, look."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def _png(tmp_path, size=(96, 64)):
    rng = np.random.default_rng(0)
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:, : size[0] // 2] = (220, 40, 40)
    arr[:, size[0] // 2 :] = (30, 90, 200)
    arr[10:30, 10:40] = rng.integers(0, 255, (20, 30, 3))
    p = tmp_path / "upload.png"
    Image.fromarray(arr).save(p)
    return p


def _canvas_digest(frame) -> str:
    return frame.locator("#xt").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) >>> 0;"
        " return c.width + 'x' + c.height + ':' + h; }")


def test_add_noise_upload_and_scrub(app_server, page, tmp_path, artifacts_dir):
    sent = []  # every message the browser sends to the streamlit server
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    page.goto(app_server + "/Add_noise")
    page.get_by_text("Upload your own").click()
    page.locator("input[type=file]").set_input_files(str(_png(tmp_path)))
    page.get_by_text("No upload yet").wait_for(state="detached")
    frame = page.frame_locator("iframe").last
    # the uploaded picture (96x64) is what the scrubber shows (after the rerun settles)
    size = None
    for _ in range(120):
        try:
            size = frame.locator("body[data-ready='1'] #xt").evaluate(
                "c => [c.width, c.height]", timeout=2000)
        except Exception:  # noqa: BLE001 - iframe being replaced
            size = None
        if size == [96, 64]:
            break
        page.wait_for_timeout(250)
    assert size == [96, 64]
    # let the reruns of the upload settle: no "running" indicator, one scrubber on the page
    for _ in range(60):
        if (page.locator("[data-testid='stStatusWidget']").count() == 0
                and page.locator("iframe").count() == 1):
            break
        page.wait_for_timeout(250)
    page.wait_for_timeout(2000)
    # the upload left the other sidebar settings alone (it once set T to 10: a message
    # vanishing above the number boxes made the browser hand one box's value to another)
    assert page.get_by_label("Number of steps T").input_value() == "1000"
    assert page.get_by_label("Seed (which noise is drawn)").input_value() == "0"

    def scrub(k: str) -> None:
        # a late rerun of the upload may still swap the iframe: set the slider again until
        # the newest scrubber on the page shows it
        seen = []
        for _ in range(60):
            current = page.frame_locator("iframe").last
            try:
                current.locator("#t").fill(k, timeout=2000)
                got = current.locator("body[data-ready='1']").get_attribute("data-k",
                                                                           timeout=2000)
                if got == k:
                    return
                seen.append(f"data-k={got}")
            except Exception as e:  # noqa: BLE001 - iframe being replaced
                seen.append(type(e).__name__ + ": " + str(e).splitlines()[0][:120])
            page.wait_for_timeout(250)
        try:
            limits = page.frame_locator("iframe").last.locator("#t").evaluate(
                "s => [s.max, s.value, document.getElementById('tlabel').textContent]",
                timeout=2000)
        except Exception as e:  # noqa: BLE001
            limits = repr(e)[:120]
        steps_box = page.get_by_label("Number of steps T").input_value(timeout=2000)
        raise AssertionError(f"the scrubber never showed step {k}; iframes on the page: "
                             f"{page.locator('iframe').count()}; last attempts: {seen[-3:]}; "
                             f"slider max/value/label: {limits}; 'Number of steps T' box: "
                             f"{steps_box}")

    scrub("0")
    page.wait_for_timeout(500)
    n_before = len(sent)
    scrub("0")
    clean = _canvas_digest(frame)
    scrub("600")
    noisy = _canvas_digest(frame)
    assert noisy != clean
    assert "step 600 of 1000" in frame.locator("#tlabel").inner_text()
    mix = frame.locator("#mix").inner_text()
    assert "× image" in mix and "× noise" in mix
    for k in ("10", "300", "999", "1000"):
        scrub(k)
    page.wait_for_timeout(500)
    # scrubbing is computed in the browser: not one message went to the server
    assert len(sent) == n_before, sent[n_before:]
    # the page itself did not rerun (no round trip): the uploader still shows the file
    page.screenshot(path=str(artifacts_dir / "add_noise.png"), full_page=False)
    # presenter-mode screenshot for the README
    page.get_by_text("Presenter mode").click()
    frame = page.frame_locator("iframe").last
    frame.locator("body[data-ready='1']").wait_for()
    page.screenshot(path=str(artifacts_dir / "add_noise_presenter.png"), full_page=False)


def test_home_links_every_page(app_server, page):
    page.goto(app_server)
    # the sidebar links render after the title: wait for them rather than counting at once
    paths = {"Add noise": "Add_noise", "Restore": "Restore", "Repair": "Repair", "Train": "Train",
             "Why diffusion": "Why_diffusion", "Cost of steps": "Cost_of_steps"}
    for name, path in paths.items():
        link = page.get_by_role("link", name=name).first
        link.wait_for(timeout=60_000)
        href = link.get_attribute("href") or ""
        assert link.is_visible() and href.rstrip("/").split("/")[-1] == path, (name, href)
    page.get_by_role("link", name="Add noise").first.click()
    page.wait_for_url("**/Add_noise", timeout=60_000)
    title = page.get_by_text("Add noise: the forward process")
    title.wait_for(timeout=60_000)
    assert page.url.rstrip("/").endswith("/Add_noise") and title.is_visible()


def test_why_diffusion_trains_and_shows_table(app_server, page, artifacts_dir):
    import re

    page.goto(app_server + "/Why_diffusion")
    steps = page.get_by_role("spinbutton", name="Training steps")
    steps.fill("40")
    steps.press("Enter")
    page.wait_for_timeout(500)
    assert page.get_by_text("Pick a dataset and press Train").first.is_visible()
    page.get_by_role("button", name="Train", exact=True).click()
    heading = page.get_by_text("Results on Ring of 8 Gaussians (seed 0, 40 steps)")
    heading.wait_for(timeout=300_000)
    # the results arrive by reruns: the table may draw a moment after its heading
    table = page.locator("[data-testid='stDataFrame']").first
    table.wait_for(state="visible", timeout=60_000)
    assert heading.is_visible() and table.is_visible()
    # one panel per model (GAN, VAE, diffusion), each saying it trained the 40 steps
    assert page.get_by_text(re.compile(r"^40 steps, [0-9.]+ s$")).count() == 3
    assert page.get_by_text("Training failed").count() == 0
    assert page.get_by_text("Pick a dataset and press Train").count() == 0
    page.screenshot(path=str(artifacts_dir / "why_diffusion.png"), full_page=True)


def _wait_value(locator, expected: str, timeout_s: float = 60.0) -> str:
    import time

    deadline = time.time() + timeout_s
    v = None
    while time.time() < deadline:
        try:
            v = locator.input_value(timeout=2000)
        except Exception:  # noqa: BLE001 - the page is re-rendering
            v = None
        if v == expected:
            break
        time.sleep(0.25)
    return v


def _wait_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until streamlit's 'running' indicator is gone."""
    page.wait_for_timeout(500)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=timeout_ms)


def test_choices_survive_page_navigation(app_server, page):
    label = "Seed (which noise is drawn)"
    page.goto(app_server + "/Add_noise")
    page.frame_locator("iframe").first.locator("body[data-ready='1']").wait_for()
    _wait_idle(page)
    seed = page.get_by_role("spinbutton", name=label)
    seed.fill("7")
    seed.press("Enter")
    page.wait_for_timeout(3000)  # a person reads the new picture before moving on
    _wait_idle(page)
    page.get_by_role("link", name="Restore").first.click()
    page.get_by_text("Restore: the reverse process").wait_for()
    assert _wait_value(page.get_by_role("spinbutton", name=label), "7") == "7"
    _wait_idle(page)
    page.get_by_role("link", name="Add noise").first.click()
    page.get_by_text("Add noise: the forward process").wait_for()
    assert _wait_value(page.get_by_role("spinbutton", name=label), "7") == "7"
