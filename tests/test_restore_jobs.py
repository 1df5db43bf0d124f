"""The background restore job: progress, stop and failures of a restore (no real model).

Queueing, the GPU lock and a closed tab are the job base's, tested in tests/test_jobs.py;
here only that a restore run keeps its partial result when they stop it."""

from __future__ import annotations

import threading
import time

import torch

from diffusion_core.jobs import base
from diffusion_core.jobs.base import friendly_error
from diffusion_core.jobs.restore import RestoreJob, frame_every_for, planned_steps
from diffusion_core.maths.schedules import make_schedule
from tests.doubles import Failing
from tests.waiting import until

SCH = make_schedule("linear", 1000)


class Slow:
    """A stand-in denoiser that predicts gray; after ``block_after`` calls it waits for
    ``release`` (so a test can act while a run is in the middle)."""

    def __init__(self, block_after: int | None = None):
        self.release = threading.Event()
        self.block_after = block_after
        self.calls = 0

    def __call__(self, x, sigma):
        self.calls += 1
        if self.block_after is not None and self.calls > self.block_after:
            self.release.wait(30)
        return torch.zeros_like(x)


def test_runs_and_reports_progress():
    img = torch.rand(3, 16, 16) * 2 - 1
    job = RestoreJob(Slow(), img, SCH, step=300, steps=5, seed=1).start()
    assert job.wait(60) and job.state == "done"
    snap = job.snapshot()
    assert snap["i"] == snap["n"] == 5 and snap["latest"]["x0_hat"].shape == (3, 16, 16)
    assert job.result.steps_run == 5 and len(job.result.frames) == 5
    assert job.peak_rss_mb and job.peak_rss_mb > 0


def test_stop_keeps_what_was_computed():
    den = Slow(block_after=2)
    job = RestoreJob(den, None, SCH, step=1000, steps=50, shape=(1, 8, 8)).start()
    for _ in range(200):
        if job.i >= 2:
            break
        threading.Event().wait(0.05)
    job.stop()
    den.release.set()
    assert job.wait(60) and job.state == "stopped"
    assert 2 <= job.result.steps_run < 50 and job.result.stopped
    assert job.result.final.shape == (1, 8, 8)


def test_failure_becomes_one_sentence():
    broken = Failing(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nlong details"))
    job = RestoreJob(broken, torch.zeros(3, 8, 8), SCH, step=100, steps=2).start()
    assert job.wait(30) and job.state == "failed"
    assert job.error.startswith("The GPU ran out of memory")
    assert friendly_error(ValueError("bad\nmore")) == "The run failed (ValueError: bad)."


def test_frame_budget_and_planned_steps():
    assert frame_every_for(25, (3, 256, 256)) == 1
    assert frame_every_for(1000, (3, 256, 256)) == 10  # at most 100 frames
    assert frame_every_for(100, (3, 1024, 1024)) > 1  # big pictures keep fewer frames
    assert planned_steps(10, 25) == 10 and planned_steps(1000, 25) == 25


# ---------------------------------------------------------------- a session that goes away


class Ticking:
    """A stand-in denoiser that takes ``dt`` seconds per call (a run long enough to act in)."""

    def __init__(self, dt: float = 0.01):
        self.dt = dt

    def __call__(self, x, sigma):
        time.sleep(self.dt)
        return torch.zeros_like(x)


def _wait_for(cond, timeout: float = 30.0) -> bool:
    return until(cond, timeout)


def test_run_stops_when_its_session_is_gone_for_the_grace_period():
    from diffusion_core.system import counters

    here = threading.Event()
    here.set()
    before = counters.snapshot()
    job = RestoreJob(Ticking(), None, SCH, step=1000, steps=500, shape=(1, 8, 8),
                     alive=here.is_set, grace_s=0.3).start()
    assert _wait_for(lambda: job.i >= 2)
    gone_at = time.monotonic()
    here.clear()  # the browser tab was closed
    assert job.wait(30) and job.state == "stopped" and job.abandoned
    waited = time.monotonic() - gone_at
    assert 0.3 <= waited < 10, waited
    assert not job._thread.is_alive()
    assert job.result is not None and job.result.stopped and job.result.steps_run < 500
    after = counters.snapshot()
    assert after.get("restore_abandoned", 0) == before.get("restore_abandoned", 0) + 1
    assert after.get("restore_threads", 0) <= before.get("restore_threads", 0)


def test_a_queued_run_whose_session_is_gone_leaves_the_queue():
    taken = 0
    while base.RUN_SLOTS.try_acquire():
        taken += 1
    try:
        job = RestoreJob(Slow(), None, SCH, step=1000, steps=3, shape=(1, 8, 8),
                         alive=lambda: False, grace_s=0.2).start()
        assert job.wait(10) and job.state == "stopped" and job.abandoned
        assert job.result is None
    finally:
        for _ in range(taken):
            base.RUN_SLOTS.release()


