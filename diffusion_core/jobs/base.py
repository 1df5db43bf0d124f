"""The background job every long page action runs in: a thread a page can poll and stop.

A :class:`Job` runs its :meth:`Job.work` in a daemon thread and never touches the UI. The
page starts it, keeps it (in its session state), and redraws from :meth:`Job.snapshot`,
a consistent copy of the progress taken under the job's lock. One place holds what every
job shares:

* **States.** ``new`` -> (``waiting``) -> running state -> ``done`` / ``stopped`` /
  ``failed``. A job is :attr:`Job.done` once it is in one of the last three, and by then its
  slot and the GPU are free again.
* **Stop.** :meth:`Job.stop` sets a flag that the work checks through
  :meth:`Job.should_stop`; what was computed so far is kept.
* **Slots.** A :class:`SlotPool` limits how many jobs of a kind run at once in the server
  process. :data:`RUN_SLOTS` (``DIFFUSION_LAB_MAX_RUNS``, default 2) is shared by restore,
  steps study, repair and the 2-D comparison: a job started with :meth:`Job.start` waits in
  the queue (and can be stopped while it waits). :meth:`Job.try_start` is refused instead
  when no slot is free (training: one at a time, never queued).
* **The GPU lock.** Jobs on an accelerator run one at a time (:data:`GPU_LOCK`), so two
  visitors never split the GPU's memory; CPU jobs share the cores instead.
* **A session that went away.** A page may hand the job an ``alive`` check (is the browser
  session still connected?); once it has answered False for ``grace_s`` seconds in a row
  (``DIFFUSION_LAB_ORPHAN_GRACE_S``, default 20) the job stops as if Stop had been pressed.
  The grace period lets a session that reconnects after a network blip keep its run.
* **Threads.** A CPU run's worker thread sets its own PyTorch thread count from
  :func:`thread_plan` (:mod:`diffusion_core.system.threads`: the cores this process may use
  shared by the runs that may go at once, one left for the server and the browser;
  ``DIFFUSION_LAB_TORCH_THREADS`` forces it). :attr:`Job.runs_on` says it in words.
* **News.** Every :meth:`Job.update` and change of state counts up :attr:`Job.version` and
  wakes :meth:`Job.wait_for_news`, so that a page can redraw when there is something new
  instead of on a clock.
* **Errors** become one sentence for the screen (:func:`friendly_error`), never a traceback.
* **Counters** (:mod:`diffusion_core.system.counters`): ``<kind>_started``, ``<kind>_threads``
  (alive now), ``<kind>_done`` / ``_stopped`` / ``_failed`` and ``<kind>_abandoned``.

No streamlit here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from diffusion_core.system import counters
from diffusion_core.system.device import device_label
from diffusion_core.system.threads import ThreadPlan, redraw_every, run_plan

FINAL_STATES = ("done", "stopped", "failed")
POLL_S = 0.2  # how often a queued job looks at its stop flag

_ids = itertools.count(1)


def max_concurrent_runs() -> int:
    """How many runs share the server at once (``DIFFUSION_LAB_MAX_RUNS``, default 2)."""
    try:
        return max(1, int(os.environ.get("DIFFUSION_LAB_MAX_RUNS", "2")))
    except ValueError:
        return 2


def orphan_grace_s() -> float:
    """Seconds a run goes on after its browser session disconnected (default 20)."""
    try:
        v = float(os.environ.get("DIFFUSION_LAB_ORPHAN_GRACE_S", "20"))
    except ValueError:
        return 20.0
    return v if v >= 0 else 20.0


def set_default_threads(n: int) -> None:
    """The PyTorch thread count that threads which have not used torch yet start with,
    leaving the calling thread's own count alone (``torch.set_num_threads`` sets both, so it
    is called from a short helper thread that computes nothing)."""
    helper = threading.Thread(target=torch.set_num_threads, args=(int(n),),
                              name="torch-default-threads", daemon=True)
    helper.start()
    helper.join()


def thread_plan() -> ThreadPlan:
    """The PyTorch threads a run in this server gets (the server shares the machine with
    its own page reruns, and often with the browser)."""
    return run_plan(max_concurrent_runs(), sharing=True)


class SlotPool:
    """At most ``capacity`` holders at a time, process-wide; it knows who holds a slot."""

    def __init__(self, capacity: int, name: str = "slots"):
        self.capacity = int(capacity)
        self.name = name
        self._sem = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()
        self._holders: list[Any] = []

    def acquire(self, holder: Any = None, timeout: float | None = None) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds (None: for ever)."""
        ok = self._sem.acquire(timeout=timeout) if timeout is not None else self._sem.acquire()
        if ok:
            with self._lock:
                self._holders.append(holder)
        return ok

    def try_acquire(self, holder: Any = None) -> bool:
        """Take a slot if one is free now; never waits."""
        if not self._sem.acquire(blocking=False):
            return False
        with self._lock:
            self._holders.append(holder)
        return True

    def release(self, holder: Any = None) -> None:
        with self._lock:
            if holder in self._holders:
                self._holders.remove(holder)
        self._sem.release()

    def holders(self) -> list[Any]:
        """Who holds a slot now (``None`` for anonymous holders)."""
        with self._lock:
            return list(self._holders)

    @property
    def free(self) -> int:
        with self._lock:
            return self.capacity - len(self._holders)


RUN_SLOTS = SlotPool(max_concurrent_runs(), "runs")
# One accelerator, one run at a time: GPU (or MPS) runs queue on this lock as well.
GPU_LOCK = threading.Lock()


def on_accelerator(device) -> bool:
    return torch.device(device).type != "cpu"


GPU_OOM = ("The GPU ran out of memory. Choose a smaller working size or fewer steps, or run on "
           "the CPU.")
RAM_OOM = "The computer ran out of memory. Choose a smaller working size."


def friendly_error(e: BaseException, failed: str = "The run failed", gpu_oom: str = GPU_OOM,
                   ram_oom: str = RAM_OOM) -> str:
    """One sentence for the screen (never a traceback): out-of-memory errors get advice,
    anything else ``"<failed> (<type>: <first line of the message>)."``."""
    text = str(e)
    if isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return gpu_oom
    if isinstance(e, MemoryError):
        return ram_oom
    short = text.splitlines()[0][:200] if text else ""
    return f"{failed} ({type(e).__name__}{': ' + short if short else ''})."


class Job:
    """One piece of work in a daemon thread. Subclasses set :attr:`kind`, implement
    :meth:`work` (and :meth:`progress` for the snapshot) and report with :meth:`update`."""

    kind = "job"  # thread names and counters
    slots: SlotPool | None = RUN_SLOTS  # None: no limit
    use_gpu_lock = True  # queue on GPU_LOCK when the device is an accelerator
    running_state = "running"  # the state once the job holds its slot
    failed_text, gpu_oom_text, ram_oom_text = "The run failed", GPU_OOM, RAM_OOM

    def __init__(self, device: str | torch.device = "cpu", settings: dict | None = None,
                 alive: Callable[[], bool] | None = None, grace_s: float | None = None):
        self.id = next(_ids)
        self.device = torch.device(device)
        self.settings = dict(settings or {})
        self.state = "new"
        self.error: str | None = None
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.announced = False  # set by the page once it has shown the finished job
        self.alive = alive
        self.grace_s = orphan_grace_s() if grace_s is None else float(grace_s)
        self.abandoned = False  # stopped because the session went away
        self.cache: dict[str, Any] = {}  # for the page: things made once on demand
        self.plan = thread_plan()
        self.runs_on = device_label(self.device, self.plan)  # for people
        self.version = 0  # counts the changes a page could show (see wait_for_news)
        self._gone_since: float | None = None
        self._slot_held = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._news = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name=f"{self.kind}-job-{self.id}",
                                        daemon=True)

    # ------------------------------------------------------------------ to override
    def work(self) -> bool | None:
        """Do the work (in the job's thread). Return True if it ended early because of a
        stop (its partial result kept), False if it finished; None: decide from the stop
        flag."""
        raise NotImplementedError

    def progress(self) -> dict[str, Any]:
        """The job's own fields for :meth:`snapshot` (called under the lock: return copies
        of anything the worker mutates in place)."""
        return {}

    def explain(self, e: BaseException) -> str | None:
        """A sentence for a failure this kind of job knows better, or None."""
        return None

    # ------------------------------------------------------------------ control
    def start(self) -> Job:
        """Start the thread; without a free slot the job waits in the queue."""
        self._thread.start()
        return self

    def try_start(self) -> bool:
        """Start only if a slot is free now; False (and nothing started) otherwise."""
        if self.slots is not None:
            if not self.slots.try_acquire(self):
                return False
            self._slot_held = True
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._changed()

    def redraw_every(self, every: float) -> float:
        """How often a live view should redraw this job (see
        :func:`diffusion_core.system.threads.redraw_every`): ``every`` seconds unless it
        computes on the CPU with every core."""
        return redraw_every(self.plan, every, on_cpu=not on_accelerator(self.device))

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (at most ``timeout`` s); True if the job is done."""
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)
        return self.done

    def update(self, **fields: Any) -> None:
        """Set several fields at once, so that a snapshot sees all or none of them."""
        with self._lock:
            for k, v in fields.items():
                setattr(self, k, v)
            self._changed()

    def _changed(self) -> None:
        """Count a change and wake the waiting pages (call with the lock held)."""
        self.version += 1
        self._news.notify_all()

    def wait_for_news(self, seen: int, timeout: float) -> int:
        """Wait (without using the CPU) until the job has changed since version ``seen`` or
        is done, at most ``timeout`` seconds; returns the version now."""
        with self._news:
            self._news.wait_for(lambda: self.version != seen or self.done,
                                max(float(timeout), 0.0))
            return self.version

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the progress for the page."""
        with self._lock:
            now = self.finished or time.time()
            snap = {"state": self.state, "error": self.error,
                    "elapsed": now - (self.started or now),
                    "stop_requested": self._stop.is_set(), "version": self.version,
                    "runs_on": self.runs_on}
            snap.update(self.progress())
        return snap

    def should_stop(self) -> bool:
        """For the work to check: Stop was pressed, or the session is gone for good."""
        return self._stop.is_set() or self._orphaned()

    def friendly_error(self, e: BaseException) -> str:
        return self.explain(e) or friendly_error(e, self.failed_text, self.gpu_oom_text,
                                                 self.ram_oom_text)

    # ------------------------------------------------------------------ worker
    def _orphaned(self) -> bool:
        """True once ``alive()`` has said False for ``grace_s`` seconds in a row."""
        if self.alive is None:
            return False
        try:
            here = self.alive() is not False
        except Exception:  # noqa: BLE001 - a broken check must not end a run
            here = True
        now = time.monotonic()
        if here:
            self._gone_since = None
            return False
        if self._gone_since is None:
            self._gone_since = now
        if now - self._gone_since >= self.grace_s:
            self.abandoned = True
        return self.abandoned

    def _run(self) -> None:
        counters.bump(f"{self.kind}_threads")
        counters.bump(f"{self.kind}_started")
        try:
            self._execute()
        finally:
            counters.bump(f"{self.kind}_{self.state}")
            if self.abandoned:
                counters.bump(f"{self.kind}_abandoned")
            counters.bump(f"{self.kind}_threads", -1)

    def _wait_for(self, take: Callable[[], bool]) -> bool:
        """Take a resource, looking at the stop flag while queued; False if stopped first."""
        if take():
            return True
        with self._lock:
            self.state = "waiting"
            self._changed()
        while not self.should_stop():
            if take():
                return True
        return False

    def _execute(self) -> None:
        final, error = "failed", None
        gpu_held = False
        try:
            if self.slots is not None and not self._slot_held:
                self._slot_held = self._wait_for(
                    lambda: self.slots.acquire(self, timeout=POLL_S))
                if not self._slot_held:
                    final = "stopped"
                    return
            if self.use_gpu_lock and on_accelerator(self.device):
                gpu_held = self._wait_for(lambda: GPU_LOCK.acquire(timeout=POLL_S))
                if not gpu_held:
                    final = "stopped"
                    return
            with self._lock:
                self.state, self.started = self.running_state, time.time()
                self._changed()
            with self._threads():
                stopped = self.work()
            if stopped is None:
                stopped = self._stop.is_set() or self.abandoned
            final = "stopped" if stopped else "done"
        except Exception as e:  # noqa: BLE001 - every failure becomes one message
            error = self.friendly_error(e)
        finally:
            # free the resources before the job says it is done: a page that sees it done
            # may start the next one at once
            if gpu_held:
                GPU_LOCK.release()
            if self._slot_held:
                self.slots.release(self)
                self._slot_held = False
            with self._lock:
                self.state, self.error, self.finished = final, error, time.time()
                self.started = self.started or self.finished
                self._changed()

    @contextlib.contextmanager
    def _threads(self):
        """This worker thread's PyTorch threads follow :attr:`plan` while the work runs (the
        count is the calling thread's own). A run with several threads also makes one thread
        the default for threads that have not used torch yet (the page's reruns: previews
        are small), and keeps it so: an idle OpenMP team of another thread makes every
        parallel step of the run slower (GNU OpenMP stops spinning when it manages more
        threads than there are cores), 1.36 s against 0.87 s for 25 steps at 256 px here."""
        before = torch.get_num_threads()  # (also gives this thread its starting count)
        torch.set_num_threads(self.plan.threads)
        if self.plan.threads > 1:
            set_default_threads(1)
        try:
            yield
        finally:
            if self.plan.threads == 1:  # the default this thread's setting changed
                set_default_threads(before)


class ReverseJob(Job):
    """A job that runs a denoiser on one picture from one step of a noise schedule (the
    restore run and the steps study): the inputs they share, stored once."""

    def __init__(self, denoiser, image: torch.Tensor | None, schedule, step: int, seed: int = 0,
                 **job_kwargs):
        super().__init__(**job_kwargs)
        self.denoiser, self.image, self.schedule = denoiser, image, schedule
        self.step, self.seed = int(step), int(seed)
