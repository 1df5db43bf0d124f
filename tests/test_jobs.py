"""The background-job base every page's long action uses: start, progress, stop, errors,
slots (queued and refused), the GPU lock, a session that goes away, consistent snapshots."""

from __future__ import annotations

import sys
import threading
import time

import pytest
import torch

from diffusion_core.jobs import base
from diffusion_core.jobs.base import Job, SlotPool, friendly_error
from diffusion_core.system import counters
from tests.waiting import until


def _until(cond, timeout: float = 20.0) -> bool:
    return until(cond, timeout, poll=0.01)


class Steps(Job):
    """Counts to ``n``; after ``gate_at`` steps it waits for ``gate`` (so a test can act
    while it is in the middle). Honours Stop like a real job (its partial count is kept)."""

    kind = "teststeps"

    def __init__(self, n: int = 5, gate_at: int | None = None, pool: SlotPool | None = None,
                 dt: float = 0.0, **kw):
        super().__init__(**kw)
        self.slots = pool or SlotPool(4, "test")
        self.n, self.gate_at, self.dt = n, gate_at, dt
        self.gate = threading.Event()
        self.i = 0
        self.log: list[int] = []
        self.ran = False

    def progress(self):
        return {"i": self.i, "n": self.n, "log": list(self.log)}

    def work(self):
        self.ran = True
        for k in range(self.n):
            if self.should_stop():
                return True
            if self.gate_at is not None and k == self.gate_at:
                self.gate.wait(30)
            time.sleep(self.dt)
            with self._lock:
                self.i = k + 1
                self.log.append(k)
        return False


def test_start_progress_and_done():
    before = counters.snapshot()
    job = Steps(5).start()
    assert job.wait(20) and job.done and job.state == "done"
    snap = job.snapshot()
    assert snap["state"] == "done" and snap["i"] == 5 and snap["log"] == [0, 1, 2, 3, 4]
    assert snap["error"] is None and snap["elapsed"] >= 0 and not snap["stop_requested"]
    assert job.started is not None and job.finished >= job.started
    after = counters.snapshot()
    assert after.get("teststeps_done", 0) == before.get("teststeps_done", 0) + 1
    assert after.get("teststeps_threads", 0) == before.get("teststeps_threads", 0)
    assert job.slots.free == job.slots.capacity  # the slot is back


def test_a_job_not_started_is_not_done_and_wait_does_not_hang():
    job = Steps(1)
    assert job.state == "new" and not job.done and not job.wait(0.1)


def test_stop_keeps_the_partial_progress():
    job = Steps(50, gate_at=3).start()
    assert _until(lambda: job.snapshot()["i"] == 3)
    job.stop()
    assert job.snapshot()["stop_requested"]
    job.gate.set()
    assert job.wait(20) and job.state == "stopped"
    assert 3 <= job.i < 50 and job.error is None


def test_work_that_returns_none_is_stopped_if_stop_was_pressed():
    class Plain(Steps):
        def work(self):
            self.gate.wait(30)

    job = Plain().start()
    job.stop()
    job.gate.set()
    assert job.wait(20) and job.state == "stopped"
    job = Plain()
    job.gate.set()
    assert job.start().wait(20) and job.state == "done"


def test_errors_become_one_sentence_and_free_the_slot():
    class Broken(Steps):
        def work(self):
            raise ValueError("bad input\nwith a long traceback-ish tail")

    pool = SlotPool(1, "one")
    job = Broken(pool=pool).start()
    assert job.wait(20) and job.state == "failed"
    assert job.error == "The run failed (ValueError: bad input)."
    assert job.snapshot()["error"] == job.error and pool.free == 1

    class OOM(Steps):
        failed_text = "Training failed"

        def work(self):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")

        def explain(self, e):
            return "special" if "special" in str(e) else None

    job = OOM().start()
    assert job.wait(20) and job.error == base.GPU_OOM
    assert OOM().friendly_error(RuntimeError("special case")) == "special"
    assert OOM().friendly_error(KeyError("x")) == "Training failed (KeyError: 'x')."
    assert friendly_error(MemoryError()) == base.RAM_OOM
    assert friendly_error(RuntimeError()) == "The run failed (RuntimeError)."


def test_a_full_pool_refuses_try_start_and_queues_start():
    pool = SlotPool(1, "one")
    first = Steps(5, gate_at=1, pool=pool)
    assert first.try_start()
    assert _until(lambda: first.i == 1)
    assert pool.holders() == [first] and pool.free == 0
    refused = Steps(2, pool=pool)
    assert not refused.try_start()
    assert refused.state == "new" and not refused._thread.is_alive() and not refused.ran
    queued = Steps(2, pool=pool).start()
    assert _until(lambda: queued.state == "waiting") and not queued.ran
    first.gate.set()
    assert first.wait(20) and first.state == "done"
    assert queued.wait(20) and queued.state == "done" and queued.ran
    assert pool.free == 1
    again = Steps(1, pool=pool)
    assert again.try_start() and again.wait(20) and again.state == "done"


def test_a_queued_job_can_be_stopped_and_never_runs():
    pool = SlotPool(1, "one")
    assert pool.try_acquire("someone")
    try:
        job = Steps(3, pool=pool).start()
        assert _until(lambda: job.state == "waiting")
        job.stop()
        assert job.wait(10) and job.state == "stopped" and not job.ran
        assert job.started == job.finished  # it never ran
    finally:
        pool.release("someone")
    assert pool.free == 1


def test_a_done_job_has_already_given_its_slot_back():
    """The page may start the next job as soon as it sees the last one done."""
    pool = SlotPool(1, "one")
    seen: list[int] = []
    job = Steps(3, pool=pool).start()
    while not job.done:
        pass
    seen.append(pool.free)
    assert job.wait(10) and seen == [1]


def test_accelerator_jobs_go_one_at_a_time(monkeypatch):
    """Two jobs on a GPU queue on one lock even when slots are free (simulated device)."""
    monkeypatch.setattr(base, "on_accelerator", lambda device: True)
    first = Steps(3, gate_at=1).start()
    assert _until(lambda: first.i == 1) and first.state == "running"
    second = Steps(2).start()
    assert _until(lambda: second.state == "waiting") and not second.ran
    stopped = Steps(2).start()
    assert _until(lambda: stopped.state == "waiting")
    stopped.stop()
    assert stopped.wait(10) and stopped.state == "stopped" and not stopped.ran
    first.gate.set()
    assert first.wait(20) and second.wait(20) and second.state == "done"
    assert base.GPU_LOCK.acquire(blocking=False)  # nobody kept it
    base.GPU_LOCK.release()

    class CPUOnly(Steps):
        use_gpu_lock = False

    assert base.GPU_LOCK.acquire(blocking=False)
    try:  # a job that does not use the lock is not held up by it
        assert CPUOnly(2).start().wait(10)
    finally:
        base.GPU_LOCK.release()


def test_snapshots_are_consistent_copies():
    class Pairs(Steps):
        def progress(self):
            return {"a": self.a, "b": self.b, "items": list(self.items)}

        def work(self):
            for k in range(5000):
                self.update(a=k, b=-k)
                with self._lock:
                    self.items.append(k)
            return False

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        job = Pairs()
        job.a, job.b, job.items = 0, 0, []
        job.start()
        snaps = []
        while not job.done:
            snaps.append(job.snapshot())
        job.wait(20)
    finally:
        sys.setswitchinterval(old)
    snaps.append(job.snapshot())
    assert all(s["a"] == -s["b"] for s in snaps)
    assert all(len(s["items"]) in (s["a"], s["a"] + 1) for s in snaps)
    last = snaps[-1]
    last["items"].clear()  # a snapshot is the page's own copy
    assert len(job.items) == 5000 and job.snapshot()["items"][-1] == 4999


# ---------------------------------------------------------------- a session that goes away


def test_a_job_stops_once_its_session_is_gone_for_the_grace_period():
    here = threading.Event()
    here.set()
    before = counters.snapshot()
    job = Steps(5000, dt=0.002, alive=here.is_set, grace_s=0.3).start()
    assert _until(lambda: job.i >= 2)
    gone_at = time.monotonic()
    here.clear()  # the browser tab was closed
    assert job.wait(30) and job.state == "stopped" and job.abandoned
    assert 0.3 <= time.monotonic() - gone_at < 10
    assert not job._thread.is_alive() and job.i < 5000
    after = counters.snapshot()
    assert after.get("teststeps_abandoned", 0) == before.get("teststeps_abandoned", 0) + 1


def test_a_short_disconnect_keeps_the_job():
    here = threading.Event()
    here.set()
    job = Steps(300, dt=0.002, alive=here.is_set, grace_s=3.0).start()
    assert _until(lambda: job.i >= 2)
    here.clear()  # a network blip ...
    time.sleep(0.1)
    here.set()  # ... and the session reconnects
    assert job.wait(60) and job.state == "done" and not job.abandoned


def test_a_queued_job_whose_session_is_gone_leaves_the_queue():
    pool = SlotPool(1, "one")
    assert pool.try_acquire()
    job = Steps(3, pool=pool, alive=lambda: False, grace_s=0.2).start()
    assert job.wait(10) and job.state == "stopped" and job.abandoned and not job.ran
    pool.release()


@pytest.mark.parametrize("alive", ["broken", None, "none"])
def test_a_broken_or_missing_alive_check_never_stops_a_job(alive):
    def broken():
        raise RuntimeError("no runtime")

    check = {"broken": broken, None: None, "none": lambda: None}[alive]
    job = Steps(3, alive=check, grace_s=0.0).start()
    assert job.wait(20) and job.state == "done" and not job.abandoned


def test_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv("DIFFUSION_LAB_ORPHAN_GRACE_S", "2.5")
    assert base.orphan_grace_s() == 2.5
    for bad in ("soon", "-1"):
        monkeypatch.setenv("DIFFUSION_LAB_ORPHAN_GRACE_S", bad)
        assert base.orphan_grace_s() == 20.0
    monkeypatch.setenv("DIFFUSION_LAB_MAX_RUNS", "3")
    assert base.max_concurrent_runs() == 3
    for bad in ("many", "0"):
        monkeypatch.setenv("DIFFUSION_LAB_MAX_RUNS", bad)
        assert base.max_concurrent_runs() == (2 if bad == "many" else 1)
    assert base.RUN_SLOTS.capacity >= 1
    assert torch.device("cpu").type == "cpu" and not base.on_accelerator("cpu")
