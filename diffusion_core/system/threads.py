"""How many PyTorch threads a run gets: the cores this process may use, shared between the runs
that may go at once, one core left for the server and the browser when they share the machine.

A 2-thread pool on a 2-core laptop that also runs the Streamlit server and the browser is
slower than one thread: whenever another process takes a core, every parallel region waits
for the thread that lost it (bench/results/live_cost.md). So a run in the app server gets

    threads = max(1, (cores - reserved) // runs at once)     reserved = 1 when sharing

and ``runs at once x threads <= cores`` holds whenever there is a core per run. The cores are
the process's CPU affinity, capped by a cgroup CPU quota (a container limited to 2 CPUs on a
16-core host has 2). ``DIFFUSION_LAB_TORCH_THREADS`` (or else ``OMP_NUM_THREADS``, which a
deployment may set per replica) forces the number.

PyTorch's intra-op thread count (OpenMP build) belongs to the calling thread: a run's worker
thread calls ``torch.set_num_threads`` for itself and the other threads keep theirs (it also
becomes the count a thread that has not used torch yet starts with). See
:meth:`diffusion_core.jobs.base.Job._execute`. No streamlit here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_THREADS = "DIFFUSION_LAB_TORCH_THREADS"
ENV_FALLBACK = "OMP_NUM_THREADS"
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cgroup_cpu_limit(path: Path = CGROUP_CPU_MAX) -> float | None:
    """CPUs a cgroup (v2) quota allows ("150000 100000" -> 1.5); None without a limit."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        q, p = float(quota), float(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def available_cores(limit: float | None = None) -> int:
    """Cores this process may run on: its affinity mask (else ``os.cpu_count()``), capped by
    ``limit`` CPUs (default: the cgroup quota; a fraction rounds down, never below 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit() if limit is None else limit
    if limit:
        n = min(n, max(1, math.floor(limit)))
    return max(1, n)


def forced_threads(env: Mapping[str, str] | None = None) -> tuple[int, str] | None:
    """(threads, the variable that set them) from ``DIFFUSION_LAB_TORCH_THREADS``, else
    ``OMP_NUM_THREADS``; None when neither holds a whole number >= 1."""
    env = os.environ if env is None else env
    for name in (ENV_THREADS, ENV_FALLBACK):
        try:
            n = int(str(env.get(name, "")).strip())
        except ValueError:
            continue
        if n >= 1:
            return n, name
    return None


@dataclass(frozen=True)
class ThreadPlan:
    """The threads one run gets, and why."""

    threads: int
    cores: int
    runs: int  # runs that may go at once
    reserved: int  # cores left for the server and the browser
    forced_by: str | None = None  # the environment variable that set the number

    @property
    def leaves_core(self) -> bool:
        """Whether a run with this plan leaves at least one core to the server and browser."""
        return self.threads < self.cores

    def words(self) -> str:
        """For people: "1 thread of 2 (one left for the page)"."""
        t = f"{self.threads} thread{'s' if self.threads != 1 else ''} of {self.cores}"
        if self.forced_by:
            return f"{t} (set by {self.forced_by})"
        why = [f"up to {self.runs} runs at once"] if self.runs > 1 else []
        if self.reserved:
            why.append("one left for the page")
        return t + (f" ({', '.join(why)})" if why else "")


def plan_threads(cores: int, runs: int = 1, sharing: bool = True) -> ThreadPlan:
    """Threads per run for ``runs`` runs at once on ``cores`` cores; ``sharing``: the server
    and the browser use the same machine (one core is left for them when there are two)."""
    cores, runs = max(1, int(cores)), max(1, int(runs))
    reserved = 1 if sharing and cores > 1 else 0
    return ThreadPlan(max(1, (cores - reserved) // runs), cores, runs, reserved)


def run_plan(runs: int = 1, sharing: bool = True, cores: int | None = None,
             env: Mapping[str, str] | None = None) -> ThreadPlan:
    """The plan for a run in this process: the environment's number if it sets one, else
    :func:`plan_threads` over the cores this process may use."""
    cores = available_cores() if cores is None else cores
    plan = plan_threads(cores, runs, sharing)
    forced = forced_threads(env)
    if forced is None:
        return plan
    return ThreadPlan(forced[0], plan.cores, plan.runs, 0, forced_by=forced[1])


BUSY_REDRAW_S = 3.0  # a live view's redraw interval when a CPU run takes every core


def redraw_every(plan: ThreadPlan | None, every: float, on_cpu: bool = True) -> float:
    """How often a page should redraw its live view of a run: ``every`` seconds, or at least
    :data:`BUSY_REDRAW_S` when the run computes on the CPU with every core (``plan`` leaves
    none). Each redraw then takes a core away from the run for a moment, and a parallel step
    waits for its slowest thread: redrawn every second, a 2-thread run on 2 cores took
    about 1.45x its command-line time, every 3 s about 1.2-1.3x (bench/results/live_cost.md)."""
    if plan is None or not on_cpu or plan.leaves_core:
        return float(every)
    return max(float(every), BUSY_REDRAW_S)
