"""The live view draws when a job has news, not on a clock: the job's version and its waiting,
the pacing of :func:`ui.job_watch.wait_for_news`, a page's own run never waiting, and the
benchmark's helpers (bench/live_cost.py)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch
from streamlit.testing.v1 import AppTest

from bench import live_cost
from diffusion_core.jobs.base import Job, set_default_threads
from ui import job_watch
from ui.job_watch import wait_for_news


class Gated(Job):
    """Reports a step each time the test opens its gate; ends when told to."""

    kind = "newstest"
    slots = None

    def __init__(self):
        super().__init__()
        self.step_gate = threading.Semaphore(0)
        self.finish = threading.Event()
        self.i = 0

    def progress(self):
        return {"i": self.i}

    def work(self):
        while not self.finish.is_set():
            if self.step_gate.acquire(timeout=0.01):
                self.update(i=self.i + 1)
        return False


@pytest.fixture
def job():
    j = Gated().start()
    assert _until(lambda: j.state == "running")
    yield j
    j.finish.set()
    j.wait(10)


def _until(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def test_every_update_and_state_change_is_news(job):
    v0 = job.snapshot()["version"]
    job.step_gate.release()
    assert _until(lambda: job.i == 1)
    v1 = job.snapshot()["version"]
    assert v1 == v0 + 1
    assert job.wait_for_news(v0, timeout=0) == v1  # already newer: no waiting
    job.stop()  # pressing Stop is news too
    assert job.version == v1 + 1
    job.finish.set()
    assert job.wait(10)
    assert job.snapshot()["version"] > v1 + 1  # and so is the end


def test_waiting_for_news_returns_when_an_update_comes(job):
    seen = job.version
    threading.Timer(0.05, job.step_gate.release).start()
    t0 = time.monotonic()
    assert job.wait_for_news(seen, timeout=20) == seen + 1
    assert time.monotonic() - t0 < 10  # woken by the update, not by the timeout


def test_no_news_no_drawing(job):
    """Nothing changed: the live view waits for the longest quiet time, then says so."""
    seen, t0 = job.version, time.monotonic()
    assert wait_for_news(job, seen, t0, every=0.05, quiet=0.3) is False
    assert time.monotonic() - t0 >= 0.29
    assert job.version == seen


def test_news_is_drawn_no_sooner_than_every(job):
    seen, t0 = job.version, time.monotonic()
    job.step_gate.release()  # news at once ...
    assert wait_for_news(job, seen, t0, every=0.3, quiet=30) is True
    assert time.monotonic() - t0 >= 0.29  # ... drawn only once `every` has passed
    assert time.monotonic() - t0 < 20  # and not held back until the quiet time


def test_the_end_is_drawn_at_once(job):
    seen, t0 = job.version, time.monotonic()
    threading.Timer(0.05, job.finish.set).start()
    assert wait_for_news(job, seen, t0, every=30, quiet=30) is True  # not held back by `every`
    assert job.done and time.monotonic() - t0 < 20


@pytest.mark.parametrize("news", [False, True])
def test_a_click_ends_the_wait_at_once(job, news):
    """A Stop click waits for the fragment's run to end: the wait notices it within a slice
    (the test's bound is loose: a slow machine may take longer, never the 30 s waits)."""
    seen, t0 = job.version, time.monotonic()
    if news:
        job.step_gate.release()
    clicked = threading.Event()
    threading.Timer(0.2, clicked.set).start()
    assert wait_for_news(job, seen, t0, every=30, quiet=30, interrupted=clicked.is_set) is False
    assert 0.19 <= time.monotonic() - t0 < 20
    assert not job.done


def _pending(requests_setup):
    from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequests

    requests = ScriptRequests()
    requests_setup(requests)
    return requests


def _rerun(**kw):
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

    return lambda r: r.request_rerun(RerunData(**kw))


def _button_pressed():
    from streamlit.proto.WidgetStates_pb2 import WidgetStates

    states = WidgetStates()
    w = states.widgets.add()
    w.id, w.trigger_value = "stop-button", True
    return states


@pytest.mark.parametrize("setup, waiting", [
    (lambda r: None, False),  # nothing pending
    (_rerun(fragment_id="live", is_auto_rerun=True), False),  # the fragment's own timer
    (lambda r: _rerun(fragment_id="live", widget_states=_button_pressed())(r), True),  # Stop
    (_rerun(), True),  # a rerun of the whole page (another widget, a navigation)
    (lambda r: r.request_stop(), True),  # the session is closing
])
def test_which_pending_requests_end_a_wait(monkeypatch, setup, waiting):
    from types import SimpleNamespace

    from streamlit.runtime.scriptrunner_utils import script_run_context

    from ui.job_watch import click_waiting

    ctx = SimpleNamespace(script_requests=_pending(setup))
    monkeypatch.setattr(script_run_context, "get_script_run_ctx", lambda *a, **k: ctx)
    assert click_waiting() is waiting
    monkeypatch.setattr(script_run_context, "get_script_run_ctx", lambda *a, **k: None)
    assert click_waiting() is False  # no script run here: never an early end


def _watch_script():
    import streamlit as st

    from ui.job_watch import watch

    job = st.session_state["job"]
    watch(lambda: job, lambda j, snap: st.write(f"drawn at version {snap['version']}"), every=30,
          key="t")


def test_the_pages_own_run_draws_once_and_never_waits(job, monkeypatch):
    """A running job with no news: the page's run draws its live view once and goes on (the
    waiting is only for the fragment's own reruns)."""
    monkeypatch.setattr(job_watch, "QUIET_S", 60.0)
    monkeypatch.setattr(job_watch, "_page_threads_set", [])  # as in a fresh server process
    set_default_threads(2)
    at = AppTest.from_function(_watch_script, default_timeout=20)
    at.session_state["job"] = job
    t0 = time.monotonic()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert time.monotonic() - t0 < 15  # it did not wait for the 60 s of quiet
    drawn = [m.value for m in at.markdown if m.value.startswith("drawn at")]
    assert drawn == [f"drawn at version {job.version}"]
    # and from now on, threads that start using torch (the page's reruns) use one thread
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert seen == [1]


# ---------------------------------------------------------------- the benchmark's helpers


def test_bench_env_and_table():
    assert live_cost.env_for("auto", "default") == {}
    assert live_cost.env_for("1", "avx2") == {"DIFFUSION_LAB_TORCH_THREADS": "1",
                                               "OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2"}
    row = {"label": "after", "capability": "avx2", "threads": "2", "torch": "AVX2, 2 threads",
           "settings": {"size": 256, "steps": 25}, "runs_on": "CPU, 2 threads of 2",
           "page_s": 2.6, "page_sampling_s": 2.1, "cli_sampling_s": 2.0, "cli_wall_s": 3.5,
           "ratio": 1.3, "ratio_wall": 0.74, "server_cpu_s": 4.0, "browser_cpu_s": 0.5,
           "media_fetches": 8, "same_psnr": True, "load_avg": [0.4, 0.5, 0.6],
           # three back-to-back pairs: 2.6/2.0, 2.4/2.0 and 5.0/2.5 (a slow spell hit both)
           "rows": [{"page": {"seconds": p}, "cli": {"sampling_s": c}}
                    for p, c in ((2.6, 2.0), (2.4, 2.0), (5.0, 2.5))]}
    assert live_cost.pair_ratio(row) == pytest.approx(1.3)  # the median of 1.3, 1.2, 2.0
    assert live_cost.pair_ratio({"rows": []}) is None
    line = live_cost.table([row | {"ratio": 1.4}]).splitlines()[-1]
    assert "AVX2 (emulated" in line and "| **1.30×** | 1.40× |" in line and "| 256, 25 |" in line
    assert line.count("|") == live_cost.table([row]).splitlines()[0].count("|")


def test_bench_defaults_match_the_page():
    from diffusion_core.app.restore import DEFAULT_SAMPLER, typical_step
    from diffusion_core.maths.schedules import make_schedule

    d = live_cost.page_defaults()
    assert d["sampler"] == DEFAULT_SAMPLER and d["seed"] == 0
    assert d["t"] == typical_step(make_schedule(d["schedule"], d["T"]))


def test_stop_bench_table(tmp_path):
    from bench import stop_latency

    rows = [{"label": "after", "threads": "2", "median_s": 0.594, "max_s": 0.7, "reps": 5,
             "load_avg": [1.5, 1.0, 1.0]},
            {"label": "before", "threads": "2", "median_s": 1.77, "max_s": 2.65, "reps": 5,
             "load_avg": [2.2, 1.0, 1.0]}]
    stop_latency.write(tmp_path / "stop", rows)
    md = (tmp_path / "stop.md").read_text()
    assert md.index("| before | 2 | **1.77** | 2.65 | 5 | 2.20 |") \
        < md.index("| after | 2 | **0.59** | 0.70 | 5 | 1.50 |")  # before first
    assert json.loads((tmp_path / "stop.json").read_text())["results"][0]["label"] == "before"
