"""The thread plan: how many PyTorch threads a run gets, the override, and that a run's worker
thread uses it without changing other threads."""

from __future__ import annotations

import threading

import pytest
import torch

from diffusion_core.app.restore import progress
from diffusion_core.jobs.base import Job, thread_plan
from diffusion_core.system.device import device_label
from diffusion_core.system.threads import (
    BUSY_REDRAW_S,
    ENV_FALLBACK,
    ENV_THREADS,
    ThreadPlan,
    available_cores,
    cgroup_cpu_limit,
    forced_threads,
    plan_threads,
    redraw_every,
    run_plan,
)


@pytest.mark.parametrize("cores, runs, sharing, threads", [
    (2, 1, True, 1),  # the 2-core laptop: one core for the run, one for the server and browser
    (2, 1, False, 2),  # nothing else on the machine: every core
    (1, 1, True, 1),  # one core: nothing to leave
    (2, 2, True, 1),  # never below one thread
    (4, 1, True, 3),
    (8, 2, True, 3),  # (8 - 1) // 2
    (16, 4, True, 3),
    (16, 4, False, 4),
])
def test_plan(cores, runs, sharing, threads):
    plan = plan_threads(cores, runs, sharing)
    assert plan.threads == threads
    assert plan.reserved == (1 if sharing and cores > 1 else 0)


def test_runs_times_threads_fit_the_cores():
    for cores in range(1, 65):
        for runs in range(1, 9):
            for sharing in (True, False):
                p = plan_threads(cores, runs, sharing)
                if cores - p.reserved >= runs:  # a core per run: the plan never oversubscribes
                    assert runs * p.threads <= cores - p.reserved
                assert p.threads >= 1


def test_words():
    assert plan_threads(2, 1, True).words() == "1 thread of 2 (one left for the page)"
    assert plan_threads(2, 1, False).words() == "2 threads of 2"
    assert plan_threads(8, 2, True).words() == "3 threads of 8 (up to 2 runs at once, one left for the page)"
    forced = run_plan(1, cores=2, env={ENV_THREADS: "4"})
    assert forced.words() == f"4 threads of 2 (set by {ENV_THREADS})"
    assert device_label(torch.device("cpu"), plan_threads(2)) == "CPU, 1 thread of 2 (one left for the page)"
    n = available_cores()  # without a plan: the cores, the same words from every thread
    assert device_label(torch.device("cpu")) == f"CPU ({n} core{'s' if n != 1 else ''})"


def test_env_override():
    assert forced_threads({}) is None
    assert forced_threads({ENV_THREADS: "3"}) == (3, ENV_THREADS)
    assert forced_threads({ENV_FALLBACK: "2"}) == (2, ENV_FALLBACK)
    assert forced_threads({ENV_THREADS: "1", ENV_FALLBACK: "4"}) == (1, ENV_THREADS)  # ours first
    for bad in ("0", "-2", "two", "", "1.5"):
        assert forced_threads({ENV_THREADS: bad}) is None
        assert forced_threads({ENV_THREADS: bad, ENV_FALLBACK: "2"}) == (2, ENV_FALLBACK)
    assert run_plan(2, cores=8, env={}).threads == 3
    assert run_plan(2, cores=8, env={ENV_THREADS: "5"}).threads == 5
    assert run_plan(2, cores=8, env={ENV_THREADS: "5"}).forced_by == ENV_THREADS


def test_cores_from_cgroup_quota(tmp_path):
    f = tmp_path / "cpu.max"
    f.write_text("max 100000\n")
    assert cgroup_cpu_limit(f) is None
    f.write_text("150000 100000\n")
    assert cgroup_cpu_limit(f) == 1.5
    f.write_text("nonsense\n")
    assert cgroup_cpu_limit(f) is None
    assert cgroup_cpu_limit(tmp_path / "missing") is None
    assert available_cores(limit=1.5) == 1  # a fraction of a core rounds down, never to 0
    assert available_cores(limit=0.5) == 1
    assert available_cores(limit=1000) == available_cores()


class _Counting(Job):
    """Records the thread count its worker sees."""

    kind = "threadtest"
    slots = None

    def work(self):
        self.update(seen=torch.get_num_threads())
        return False


@pytest.mark.parametrize("forced", ["1", "2"])
def test_a_run_uses_its_plan_in_its_own_thread(monkeypatch, forced):
    monkeypatch.setenv(ENV_THREADS, forced)
    main_before = torch.get_num_threads()
    fresh_before: list[int] = []
    t = threading.Thread(target=lambda: fresh_before.append(torch.get_num_threads()))
    t.start()
    t.join()
    job = _Counting()
    assert job.plan == thread_plan() and job.plan.threads == int(forced)
    assert job.start().wait(30) and job.state == "done"
    assert job.seen == int(forced)
    assert torch.get_num_threads() == main_before  # other threads keep theirs
    fresh_after: list[int] = []
    t = threading.Thread(target=lambda: fresh_after.append(torch.get_num_threads()))
    t.start()
    t.join()
    # the default for threads that start using torch later: put back after a one-thread run;
    # one thread after a run with several (so that no other idle OpenMP team slows it)
    assert fresh_after == (fresh_before if forced == "1" else [1])
    snap = job.snapshot()
    assert snap["runs_on"] == f"CPU, {forced} thread{'s' if forced != '1' else ''} of " \
                              f"{job.plan.cores} (set by {ENV_THREADS})"


def test_the_plan_shows_in_the_restore_progress_line():
    plan = ThreadPlan(1, 2, 1, 1)
    snap = {"state": "running", "i": 3, "n": 25, "latest": None, "elapsed": 1.25,
            "runs_on": device_label(torch.device("cpu"), plan)}
    frac, text = progress(snap)
    assert text == "Step 3 of 25 · 1.2 s · on CPU, 1 thread of 2 (one left for the page)"
    assert frac == pytest.approx(3 / 25)


@pytest.mark.parametrize("plan, on_cpu, expected", [
    (ThreadPlan(1, 2, 1, 1), True, 1.0),  # a core left for the page: its own interval
    (ThreadPlan(2, 2, 1, 0, forced_by=ENV_THREADS), True, BUSY_REDRAW_S),  # every core taken
    (ThreadPlan(4, 4, 1, 0), True, BUSY_REDRAW_S),  # nothing shares the machine
    (ThreadPlan(3, 4, 1, 1), True, 1.0),
    (ThreadPlan(2, 2, 1, 0), False, 1.0),  # a GPU run leaves the cores alone
    (None, True, 1.0),
])
def test_live_views_redraw_less_when_a_run_takes_every_core(plan, on_cpu, expected):
    assert redraw_every(plan, 1.0, on_cpu=on_cpu) == expected
    assert redraw_every(plan, 5.0, on_cpu=on_cpu) == 5.0  # never more often than asked


def test_a_job_redraws_by_its_own_plan_and_device(monkeypatch):
    monkeypatch.setenv(ENV_THREADS, str(available_cores()))
    assert _Counting().redraw_every(0.5) == BUSY_REDRAW_S
    monkeypatch.setenv(ENV_THREADS, "1")
    job = _Counting()
    assert job.redraw_every(0.5) == (0.5 if job.plan.cores > 1 else BUSY_REDRAW_S)
