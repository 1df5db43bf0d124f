"""A restore (or generation) run as a background :class:`~diffusion_core.jobs.base.Job`.

The worker fills a :class:`RestoreJob` (progress, the latest state, then the result or an
error message) that the Restore page polls; queueing, Stop, the GPU lock and a closed tab
are handled by the base class. No streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from diffusion_core.jobs.base import ReverseJob
from diffusion_core.maths.samplers import StepInfo, spaced_timesteps
from diffusion_core.system.device import peak_rss_mb
from diffusion_core.tasks.restore import RestoreResult, restore

FRAME_BUDGET_BYTES = 256 * 2**20  # kept frames (x_t, x0_hat, eps_hat) per run, at most
MAX_FRAMES = 100
MIN_FRAMES = 8


def planned_steps(step: int, steps: int) -> int:
    """How many sampler steps a run from UI ``step`` with ``steps`` requested really makes."""
    return len(spaced_timesteps(int(step) - 1, int(steps))) if step > 0 else 0


def frame_every_for(steps: int, shape) -> int:
    """Keep every k-th frame so that the kept frames stay within the memory budget."""
    numel = math.prod(int(s) for s in shape)
    per_frame = 3 * numel * 4
    n_keep = max(MIN_FRAMES, min(MAX_FRAMES, FRAME_BUDGET_BYTES // max(per_frame, 1)))
    return max(1, math.ceil(max(int(steps), 1) / n_keep))


class RestoreJob(ReverseJob):
    """One run of :func:`diffusion_core.tasks.restore.restore` in a daemon thread.

    ``image`` (C,H,W in [-1,1]) is restored from UI ``step``; ``image=None`` with ``shape``
    generates from pure noise (``step`` should be T). ``settings`` is kept for the page and
    the exported JSON. ``alive`` (optional, called from the worker thread) says whether the
    page that started the run is still there (see :mod:`diffusion_core.jobs.base`)."""

    kind = "restore"

    def __init__(self, denoiser, image: torch.Tensor | None, schedule, step: int, steps: int,
                 sampler: str = "ddim", seed: int = 0, eta: float = 0.0,
                 device: str | torch.device = "cpu", shape: tuple | None = None,
                 settings: dict | None = None, frame_every: int | None = None,
                 alive: Callable[[], bool] | None = None, grace_s: float | None = None):
        super().__init__(denoiser, image, schedule, step, seed, device=device, settings=settings,
                         alive=alive, grace_s=grace_s)
        self.steps, self.sampler, self.eta = int(steps), sampler, float(eta)
        self.shape = tuple(image.shape) if image is not None else tuple(shape or ())
        self.frame_every = frame_every or frame_every_for(self.steps, self.shape)
        self.n = planned_steps(self.step, self.steps)
        self.i = 0
        self.latest: dict[str, Any] | None = None
        self.result: RestoreResult | None = None
        self.peak_rss_mb: float | None = None

    def progress(self) -> dict[str, Any]:
        return {"i": self.i, "n": self.n, "latest": self.latest}

    def _on_step(self, info: StepInfo) -> None:
        self.update(i=info.i + 1, n=info.n or self.n,
                    latest={"i": info.i, "step": info.step, "sigma": info.sigma,
                            "x_t": info.x_t, "x0_hat": info.x0_hat.clamp(-1, 1)})

    def work(self) -> bool:
        with torch.inference_mode():
            res = restore(self.denoiser, self.image, self.schedule, self.step, self.steps,
                          sampler=self.sampler, seed=self.seed, eta=self.eta,
                          device=self.device, callback=self._on_step,
                          frame_every=self.frame_every,
                          shape=None if self.image is not None else self.shape,
                          should_stop=self.should_stop)
        self.update(result=res, peak_rss_mb=peak_rss_mb())
        return res.stopped
