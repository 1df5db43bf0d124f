"""Real browser against a real `streamlit run`: the Lesson page walked with the keyboard at
1280×720 and 1920×1080. At every scene its visual is entirely inside the window with nothing
to scroll, and nothing shows an error; a screenshot of each scene goes to
tests/artifacts/lesson/."""

from __future__ import annotations

import re

import pytest

from diffusion_core.app.lesson import N_SCENES, SCENES

pytestmark = pytest.mark.browser

VIEWPORTS = [(1280, 720), (1920, 1080)]
FORWARD_KEYS = ["ArrowRight", "Space", "PageDown"]  # what clickers send, in turn
WARM_TIMEOUT_MS = 900_000  # the first visit trains the 2-D models (a minute on an idle CPU)
REPLAY_S = 4.0  # the drawing scene plays its steps back after the run

#: true once scene ``key``'s visual is on screen and the page's script run is over: its
#: picture loaded (not the "getting ready" card, not the 2-D models still learning) or the
#: scrubber's frame drawn
VISUAL_READY_JS = """
([key, alt]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const box = document.querySelector('.st-key-lesson_visual_' + key);
  if (!box) return false;
  const frame = box.querySelector('iframe');
  const img = box.querySelector('img');
  const el = frame || img;
  if (!el || el.getBoundingClientRect().width <= 0) return false;
  if (frame) {
    const doc = frame.contentDocument;
    return !!(doc && doc.body && doc.body.dataset.ready === '1');
  }
  return img.complete && img.naturalWidth > 0 && (!alt || img.alt === alt);
}
"""

#: the page's key listener is installed (a key pressed in the first few milliseconds of a page
#: load, before it is, does nothing)
KEYS_READY_JS = "() => document.documentElement.dataset.lessonKeys !== undefined"

#: the visual's box, the window, and how much there is to scroll
GEOMETRY_JS = """
(key) => {
  const box = document.querySelector('.st-key-lesson_visual_' + key);
  const el = box.querySelector('iframe') || box.querySelector('img');
  const r = el.getBoundingClientRect();
  const main = document.querySelector('[data-testid="stMain"]') || document.scrollingElement;
  return {x: r.left, y: r.top, right: r.right, bottom: r.bottom, width: r.width,
          height: r.height, vw: window.innerWidth, vh: window.innerHeight,
          docScroll: document.scrollingElement.scrollHeight - window.innerHeight,
          mainScroll: main.scrollHeight - main.clientHeight};
}
"""


def wait_visual(page, scene, timeout: float = 60_000) -> None:
    alt = scene.alt if scene.key != "dissolve" else ""
    page.wait_for_function(VISUAL_READY_JS, arg=[scene.key, alt], timeout=timeout, polling=100)
    if scene.live:  # it ran by itself: wait for the end of the run (and the play-back)
        page.locator(".st-key-lesson_status_done_" + scene.key).wait_for(timeout=timeout)
        if scene.key == "create":
            page.wait_for_timeout(REPLAY_S * 1000)


def errors_shown(page) -> int:
    return (page.locator('[data-testid="stException"]').count()
            + page.locator('[data-testid="stAlertContentError"]').count())


@pytest.fixture(scope="module")
def warm_server(app_server, browser):
    """The server after its warm-up: every scene computed (the last part is the 2-D
    comparison of scene 7, so its finished picture means all of them)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    page = ctx.new_page()
    page.goto(app_server + "/Lesson?scene=7")
    wait_visual(page, SCENES[6], timeout=WARM_TIMEOUT_MS)
    ctx.close()
    return app_server


@pytest.mark.parametrize("size", VIEWPORTS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_walk_every_scene_with_the_keyboard(warm_server, browser, artifacts_dir, size):
    out = artifacts_dir / "lesson"
    out.mkdir(parents=True, exist_ok=True)
    w, h = size
    ctx = browser.new_context(viewport={"width": w, "height": h})
    page = ctx.new_page()
    js_errors: list[str] = []
    page.on("pageerror", lambda e: js_errors.append(str(e)[:200]))
    try:
        page.goto(warm_server + "/Lesson?scene=1")
        page.wait_for_function(KEYS_READY_JS)
        for i, scene in enumerate(SCENES):
            wait_visual(page, scene)
            assert re.search(rf"[?&]scene={i + 1}\b", page.url), page.url
            g = page.evaluate(GEOMETRY_JS, scene.key)
            assert g["width"] > 0.4 * w or g["height"] > 0.55 * h, (scene.key, g)  # big
            assert g["x"] >= 0 and g["y"] >= 0, (scene.key, g)
            assert g["right"] <= g["vw"] + 0.5 and g["bottom"] <= g["vh"] + 0.5, (scene.key, g)
            assert g["docScroll"] <= 0 and g["mainScroll"] <= 1, (scene.key, g)  # no scrolling
            assert errors_shown(page) == 0, scene.key
            page.screenshot(path=str(out / f"{w}x{h}_{i + 1}_{scene.key}.png"))
            if i < N_SCENES - 1:
                page.keyboard.press(FORWARD_KEYS[i % len(FORWARD_KEYS)])
        # and back: ← and PageUp
        page.keyboard.press("ArrowLeft")
        wait_visual(page, SCENES[-2])
        page.keyboard.press("PageUp")
        wait_visual(page, SCENES[-3])
        assert re.search(rf"[?&]scene={N_SCENES - 2}\b", page.url), page.url
        assert errors_shown(page) == 0
        assert not js_errors, js_errors
    finally:
        ctx.close()


def test_a_bookmark_opens_its_scene_and_a_bad_one_says_so(warm_server, page):
    page.goto(warm_server + "/Lesson?scene=6")
    wait_visual(page, SCENES[5])
    page.wait_for_function(KEYS_READY_JS)
    page.get_by_role("heading", name=SCENES[5].title).wait_for()
    # the presenter's notes: off until switched on; the keys still move on afterwards
    assert page.get_by_text("classifier-free guidance, the knob").count() == 0
    page.get_by_text("Notes", exact=True).click()
    page.get_by_text("classifier-free guidance, the knob", exact=False).wait_for()
    page.keyboard.press("PageDown")
    wait_visual(page, SCENES[6])
    assert re.search(r"[?&]scene=7\b", page.url), page.url
    page.goto(warm_server + "/Lesson?scene=42")
    wait_visual(page, SCENES[0])
    page.get_by_text("There is no scene “42”").wait_for()
    assert re.search(r"[?&]scene=1\b", page.url), page.url
