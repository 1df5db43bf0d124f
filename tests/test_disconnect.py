"""Interruptions mid-restore: a visitor who closes the tab, and a rerun during a run.

* Browser: start a long restore, close the browser context mid-run. The server stays
  healthy, the abandoned run's worker thread ends (the page handed the job a check of its
  browser session; see diffusion_core/restore_jobs.py), and a new session can restore.
  A private server (bench/live_server.py) with a short grace period and a counters file.
* AppTest: changing controls while a run is going neither restarts nor alters it, and the
  result afterwards is the run's own, consistent with its settings.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bench.live_server import is_healthy, live_server
from bench.load_bench import prepare_restore, press_run

ROOT = Path(__file__).resolve().parent.parent
GRACE_S = 2  # how long the server waits for a vanished session to come back
# the most the page allows: on a CPU with bf16 (AVX512-BF16) 200 steps at 128 px took only
# ~3 s, and the run ended by itself before the server noticed the tab had closed
LONG_STEPS = 1000


@pytest.fixture(scope="module")
def server(user_models_dir, tmp_path_factory):
    env = {"DIFFUSION_LAB_USER_MODELS": str(user_models_dir),
           "DIFFUSION_LAB_ORPHAN_GRACE_S": str(GRACE_S)}
    with live_server(tmp_path_factory.mktemp("disconnect_server"), env) as srv:
        yield srv


@pytest.mark.browser
def test_closing_the_tab_mid_restore_ends_the_run_and_the_server_carries_on(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(120_000)
    try:
        # a long run: from noise step T, 1000 steps at 256 px (tens of seconds or more)
        prepare_restore(page, server.url, 256, LONG_STEPS, from_the_end=True)
        press_run(page)
        page.get_by_text(re.compile(rf"^Step ([2-9]|\d\d+) of {LONG_STEPS}")).wait_for()
        assert server.stats().get("restore_threads") == 1
    finally:
        ctx.close()  # the visitor leaves mid-run
    t_closed = time.monotonic()
    stats = server.wait_stats(lambda s: s.get("restore_threads") == 0, timeout=60)
    gone_after = time.monotonic() - t_closed
    print(f"\nthe abandoned run's thread ended {gone_after:.1f} s after the tab closed "
          f"(grace {GRACE_S} s)")
    assert stats.get("restore_threads") == 0, stats
    assert stats.get("restore_abandoned") == 1 and stats.get("restore_stopped") == 1, stats
    assert stats.get("restore_done", 0) == 0  # it was stopped, it did not just finish
    assert is_healthy(server.url) and server.healthy()

    # a new visitor restores as usual
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(120_000)
    try:
        prepare_restore(page, server.url, 128, 3)
        press_run(page)
        page.get_by_role("heading", name="The result").wait_for(timeout=180_000)
        page.get_by_text("Restored PSNR").wait_for()
        assert page.get_by_text("3 of 3 steps requested").count() == 1
        assert page.locator(".stException").count() == 0
    finally:
        ctx.close()
    stats = server.wait_stats(lambda s: s.get("restore_threads") == 0, timeout=30)
    assert stats.get("restore_done") == 1 and stats.get("restore_threads") == 0, stats
    assert stats.get("model_loads") == 1, stats
    assert "Traceback" not in server.log_text()


# ---------------------------------------------------------------- a rerun during a run


def test_changing_controls_mid_restore_leaves_the_run_and_its_result_consistent(user_models_dir):
    at = AppTest.from_file(str(ROOT / "pages/2_Restore.py"), default_timeout=180)
    at.session_state["lab_max_side"] = 128
    at.session_state["restore_steps"] = 400
    at.run()
    at.button[0].click().run()
    job = at.session_state["restore_job"]
    try:
        deadline = time.monotonic() + 120
        while job.i < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not job.done and job.i >= 2
        ran = (job.steps, job.step, job.seed, job.sampler)
        assert ran[0] == 400 and ran[2:] == (0, "ddim") and ran[1] != 300
        # while it runs: other steps, another start, another seed, another sampler
        at.number_input(key="restore_steps").set_value(5).run()
        at.slider(key="restore_step").set_value(300).run()
        at.number_input(key="w_restore_lab_seed").set_value(7).run()
        at.selectbox(key="restore_sampler").set_value("heun").run()
        assert not at.exception, [e.message for e in at.exception]
        # the same run goes on, untouched; no second run was started
        assert at.session_state["restore_job"] is job and not job.done
        assert (job.steps, job.step, job.seed, job.sampler) == ran
        assert job.settings["steps"] == 400 and job.settings["noise_step"] == ran[1]
        assert at.button[0].disabled  # Run waits for this run
        assert len(at.get("progress")) == 1
        assert not at.get("download_button")  # no half-made result on screen
        at.button(key=f"restore_stop_{job.id}").click().run()
        assert job.wait(60)
    finally:
        job.stop()
        job.wait(60)
    at.run()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["restore_job"] is job and job.state == "stopped"
    # the result describes the run that was made, and the page says the settings moved on
    caption = next(c.value for c in at.caption if "steps requested" in c.value)
    assert f"of {job.settings['steps']} steps requested" in caption
    assert f"from noise step {ran[1]} " in caption and "seed 0" in caption
    assert any("settings changed since the last run" in i.value for i in at.info)
    assert job.result.steps_run == len(job.result.metrics) >= 2
    assert all(fr.x_t.shape == (3, 128, 128) for fr in job.result.frames)
    assert len(at.get("download_button")) == 5
