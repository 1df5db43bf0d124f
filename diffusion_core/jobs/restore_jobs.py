"""A restore run in a background thread, so a page can show it live and stop it.

The worker never touches the UI: it fills a :class:`RestoreJob` (progress, the latest state,
then the result or an error message) that a page polls. A process-wide limit on concurrent
runs keeps one busy visitor from starving the others; a queued job waits (and can be
stopped while it waits).

A visitor may close the tab mid-run. The page hands the job an ``alive`` check (is the
browser session still connected?); once it has answered False for ``grace_s`` seconds in a
row, the worker stops as if Stop had been pressed and frees its slot. The grace period lets
a session that reconnects after a network blip keep its run. No streamlit here.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from diffusion_core.maths.samplers import spaced_timesteps
from diffusion_core.system import counters
from diffusion_core.tasks.restore import RestoreResult, peak_rss_mb, restore

FRAME_BUDGET_BYTES = 256 * 2**20  # kept frames (x_t, x0_hat, eps_hat) per run, at most
MAX_FRAMES = 100
MIN_FRAMES = 8

_ids = itertools.count(1)


def max_concurrent_runs() -> int:
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


_SLOTS = threading.BoundedSemaphore(max_concurrent_runs())
# One accelerator, one run at a time: GPU (or MPS) runs queue on this lock as well, so two
# visitors never split the GPU's memory between them (CPU runs share the cores instead).
_GPU_LOCK = threading.Lock()


def _on_accelerator(device) -> bool:
    return torch.device(device).type != "cpu"


def planned_steps(step: int, steps: int) -> int:
    """How many sampler steps a run from UI ``step`` with ``steps`` requested really makes."""
    return len(spaced_timesteps(int(step) - 1, int(steps))) if step > 0 else 0


def frame_every_for(steps: int, shape) -> int:
    """Keep every k-th frame so that the kept frames stay within the memory budget."""
    numel = math.prod(int(s) for s in shape)
    per_frame = 3 * numel * 4
    n_keep = max(MIN_FRAMES, min(MAX_FRAMES, FRAME_BUDGET_BYTES // max(per_frame, 1)))
    return max(1, math.ceil(max(int(steps), 1) / n_keep))


def friendly_error(e: BaseException) -> str:
    """One sentence for the screen (never a traceback)."""
    text = str(e)
    if isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return ("The GPU ran out of memory. Choose a smaller working size or fewer steps, "
                "or run on the CPU.")
    if isinstance(e, MemoryError):
        return "The computer ran out of memory. Choose a smaller working size."
    short = text.splitlines()[0][:200] if text else ""
    return f"The run failed ({type(e).__name__}{': ' + short if short else ''})."


class RestoreJob:
    """One run of :func:`diffusion_core.tasks.restore.restore` in a daemon thread.

    ``image`` (C,H,W in [-1,1]) is restored from UI ``step``; ``image=None`` with ``shape``
    generates from pure noise (``step`` should be T). ``settings`` is kept for the page and
    the exported JSON. ``alive`` (optional, called from the worker thread) says whether the
    page that started the run is still there; see the module docstring."""

    def __init__(self, denoiser, image: torch.Tensor | None, schedule, step: int, steps: int,
                 sampler: str = "ddim", seed: int = 0, eta: float = 0.0,
                 device: str | torch.device = "cpu", shape: tuple | None = None,
                 settings: dict | None = None, frame_every: int | None = None,
                 alive: Callable[[], bool] | None = None, grace_s: float | None = None):
        self.id = next(_ids)
        self.denoiser = denoiser
        self.image = image
        self.schedule = schedule
        self.step = int(step)
        self.steps = int(steps)
        self.sampler = sampler
        self.seed = int(seed)
        self.eta = float(eta)
        self.device = torch.device(device)
        self.shape = tuple(image.shape) if image is not None else tuple(shape or ())
        self.settings = dict(settings or {})
        self.frame_every = frame_every or frame_every_for(self.steps, self.shape)
        self.n = planned_steps(self.step, self.steps)
        self.state = "new"  # new, waiting, running, done, stopped, failed
        self.i = 0
        self.latest: dict[str, Any] | None = None
        self.result: RestoreResult | None = None
        self.error: str | None = None
        self.peak_rss_mb: float | None = None
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.announced = False  # set by the page once it has shown the finished run
        self.alive = alive
        self.grace_s = orphan_grace_s() if grace_s is None else float(grace_s)
        self.abandoned = False  # stopped because the session went away
        self._gone_since: float | None = None
        self.cache: dict[str, Any] = {}  # exports, made once on demand
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"restore-job-{self.id}",
                                        daemon=True)

    # ------------------------------------------------------------------ control
    def start(self) -> RestoreJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self.state in ("done", "stopped", "failed")

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def snapshot(self) -> dict:
        """A consistent copy of the progress for the page."""
        with self._lock:
            now = self.finished or time.time()
            return {"state": self.state, "i": self.i, "n": self.n, "latest": self.latest,
                    "elapsed": now - (self.started or now), "error": self.error}

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

    def _should_stop(self) -> bool:
        return self._stop.is_set() or self._orphaned()

    def _on_step(self, info: dict) -> None:
        with self._lock:
            self.i = info["i"] + 1
            self.n = info.get("n", self.n)
            self.latest = {"i": info["i"], "step": info["step"], "sigma": info["sigma"],
                           "x_t": info["x_t"], "x0_hat": info["x0_hat"].clamp(-1, 1)}

    def _run(self) -> None:
        counters.bump("restore_threads")
        counters.bump("restore_started")
        try:
            self._work()
        finally:
            counters.bump(f"restore_{self.state}")
            if self.abandoned:
                counters.bump("restore_abandoned")
            counters.bump("restore_threads", -1)

    def _work(self) -> None:
        with self._lock:
            self.state = "waiting"
        acquired = gpu_held = False
        try:
            while not acquired:
                if self._should_stop():
                    with self._lock:
                        self.state, self.finished = "stopped", time.time()
                        self.started = self.started or self.finished
                    return
                acquired = _SLOTS.acquire(timeout=0.2)
            while _on_accelerator(self.device) and not gpu_held:
                if self._should_stop():
                    with self._lock:
                        self.state, self.finished = "stopped", time.time()
                        self.started = self.started or self.finished
                    return
                gpu_held = _GPU_LOCK.acquire(timeout=0.2)
            with self._lock:
                self.state, self.started = "running", time.time()
            with torch.inference_mode():
                res = restore(self.denoiser, self.image, self.schedule, self.step, self.steps,
                              sampler=self.sampler, seed=self.seed, eta=self.eta,
                              device=self.device, callback=self._on_step,
                              frame_every=self.frame_every,
                              shape=None if self.image is not None else self.shape,
                              should_stop=self._should_stop)
            rss = peak_rss_mb()
            with self._lock:
                self.result = res
                self.peak_rss_mb = rss
                self.state = "stopped" if res.stopped else "done"
                self.finished = time.time()
        except Exception as e:  # noqa: BLE001 - every failure becomes one message
            with self._lock:
                self.error = friendly_error(e)
                self.state, self.finished = "failed", time.time()
        finally:
            if gpu_held:
                _GPU_LOCK.release()
            if acquired:
                _SLOTS.release()
