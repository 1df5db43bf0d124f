"""The static site a teacher hands out: ``python -m diffusion_core export-site DIR`` served by
``python -m http.server`` (no app server at all). Chromium opens it, asks for a class, sees the
grid, and scrubs the forward process. Screenshots: tests/artifacts/site_create.png and
site_scrubber.png; the total size is printed (goal: at most 40 MB)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.web import static_server
from diffusion_core.browser.create import runtime_problem
from diffusion_core.browser.site import site_size

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SIZE_GOAL_MB = 40


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if runtime_problem():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed, so neither is onnxruntime-web (make test installs "
                        "both when root)")
        pytest.fail(runtime_problem() + ": run `make test` (it runs npm ci in web/)")
    out = tmp_path_factory.mktemp("site") / "lab"
    p = subprocess.run([sys.executable, "-m", "diffusion_core", "export-site", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "python -m http.server" in p.stdout
    return out


def test_static_site_draws_a_class_and_scrubs(site, page, artifacts_dir):
    size_mb = site_size(site) / 1e6
    print(f"static site: {size_mb:.1f} MB")
    assert size_mb <= SIZE_GOAL_MB
    with static_server(site) as url:
        page.goto(url + "/")
        root = page.locator(".dl-create")
        # the worlds, first the clothes, each with its class pictures
        worlds = page.locator("button.dl-world")
        assert worlds.all_inner_texts()[:3] == ["Clothes", "Digits", "Doodles"]
        page.locator(".dl-create button.dl-primary:not([disabled])").wait_for(timeout=120_000)
        worlds.nth(2).click()  # Doodles
        page.locator(".dl-create button.dl-primary:not([disabled])").wait_for(timeout=120_000)
        assert page.locator(".dl-class").count() == 7  # anything + 6 doodles
        page.locator(".dl-class[aria-label='cat']").click()  # ask for a cat: it draws
        page.wait_for_function("document.querySelector('.dl-create').dataset.frames >= 1")
        root.get_by_text("step").first.wait_for()
        page.locator(".dl-create[data-state='done']").wait_for(timeout=600_000)
        assert page.get_by_text("Done: a cat").count() == 1
        tiles = page.locator("canvas.dl-final").evaluate(
            "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let s = 0, s2 = 0; for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i]; }"
            " const n = d.length / 4; return Math.sqrt(s2 / n - (s / n) ** 2); }")
        assert tiles > 20, "the final grid holds pictures"
        page.set_viewport_size({"width": 1400, "height": 2600})
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts_dir / "site_create.png"), full_page=True)
        # a typed request (an alias) works too; Stop ends it
        page.fill("input.dl-typed", "Kitten")
        page.press("input.dl-typed", "Enter")
        page.get_by_text("Drawing on this computer: a cat").wait_for()
        page.wait_for_function("document.querySelector('.dl-create').dataset.frames >= 1")
        page.get_by_role("button", name="■ Stop").click()
        page.get_by_text("Stopped early").wait_for()

        # the forward scrubber on the built-in samples, from the site's menu
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.get_by_role("link", name="Add noise").click()
        page.locator("button.dl-world").first.wait_for()
        assert page.locator("button.dl-world").count() >= 10
        page.get_by_role("button", name="Coins").click()
        slider = page.get_by_label("timestep t")
        slider.fill("600")
        page.wait_for_function("document.querySelector('#scrubber').dataset.t === '600'")
        assert "× picture" in page.locator(".dl-mix").inner_text()
        page.screenshot(path=str(artifacts_dir / "site_scrubber.png"), full_page=True)
        assert page.locator("text=could not start").count() == 0


def test_the_grid_is_the_same_on_one_worker_or_several(site, page):
    """Each picture draws its noise from its own stream (seed, picture): splitting the grid
    over Web Workers changes nothing, to the pixel."""
    grids = []
    with static_server(site) as url:
        for workers in (1, 3):
            page.goto(url + f"/index.html?model=mnist&what=3&steps=5&sampler=ddpm&seed=11"
                            f"&workers={workers}")
            page.locator(".dl-create button.dl-primary:not([disabled])").wait_for(timeout=120_000)
            assert page.locator(".dl-create").get_attribute("data-workers") == str(workers)
            page.locator(".dl-create button.dl-primary").click()
            page.wait_for_function("['sweeping', 'done'].includes("
                                   "document.querySelector('.dl-create').dataset.state)",
                                   timeout=300_000)
            grids.append(page.locator("canvas.dl-final").evaluate("c => c.toDataURL()"))
    assert grids[0] == grids[1]
