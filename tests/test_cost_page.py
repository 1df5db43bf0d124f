"""AppTest: the Cost-of-steps page measures a tiny study live and shows the charts and table."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.waiting import wait_for_page_job

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages/6_Cost_of_steps.py")


def _new_page(**state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["lab_max_side"] = 128  # load the picture small; the page shrinks it more
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _wait_done(at, timeout: float = 240.0) -> None:
    wait_for_page_job(at, "cost_job", "the measurement", timeout)


def test_tiny_study_completes_and_shows_charts_and_table(user_models_dir):
    at = _new_page(cost_size=32, cost_steps=[1, 2], cost_samplers=["ddim"], cost_noise=25)
    assert not at.error, [e.value for e in at.error]
    assert any("network calls" in c.value for c in at.caption)
    at.button(key="cost_run").click().run()
    assert not at.exception, [e.message for e in at.exception]
    _wait_done(at)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    job = at.session_state["cost_job"]
    assert job.state == "done", job.error
    assert [(r["sampler"], r["steps"]) for r in job.rows] == [("ddim", 1), ("ddim", 2)]
    assert max(job.image.shape[1:]) == 32
    assert len(at.get("plotly_chart")) == 2
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 2
    assert any("DDIM reaches within 0.3 dB" in s.value for s in at.success)
    assert any("Why can a few steps be enough" in h.value for h in at.subheader)
    # the chart can switch to agreement with the long run without failing
    at.radio(key="cost_score").set_value("reference").run()
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.get("plotly_chart")) == 2


def test_out_of_range_settings_are_clamped_not_fatal(user_models_dir):
    at = _new_page(cost_size=100000, cost_steps=[0, 7, 10**9], cost_samplers=["nope"],
                   cost_noise=-3)
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["cost_size"] == 128 and at.session_state["cost_noise"] == 50
    assert at.session_state["cost_samplers"] == [] and at.session_state["cost_steps"] == []
    assert any("Pick at least one sampler" in w.value for w in at.warning)
    assert at.button(key="cost_run").disabled


def test_stop_keeps_the_finished_runs(user_models_dir):
    at = _new_page(cost_size=64, cost_steps=[1, 2, 50, 100], cost_samplers=["ddim", "heun"],
                   cost_noise=200)
    at.button(key="cost_run").click().run()
    job = at.session_state["cost_job"]
    deadline = time.time() + 120
    while job.calls_done < 2 and time.time() < deadline:
        time.sleep(0.2)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    if not job.done:  # still running: the live view shows progress and a Stop button
        assert len(at.get("progress")) == 1
        at.button(key=f"cost_stop_{job.id}").click().run()
    _wait_done(at)
    assert not at.exception, [e.message for e in at.exception]
    assert job.state in ("stopped", "done")
    if job.state == "stopped":
        assert any("Stopped" in w.value for w in at.warning)
