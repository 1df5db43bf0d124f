"""How long a run will take on this computer, and the defaults that keep a first run short.

The measured part is :func:`diffusion_core.jobs.timing.speed_of`: one denoiser call of the
model on this device (a fixed part plus a part per pixel) and one picture score, measured at
the first load and kept. Here each page's run is counted from its settings, exactly as its
job will run it:

* model calls: :meth:`~diffusion_core.maths.samplers.SamplerSpec.model_calls` of the steps
  the run really makes (Heun: 2 per step except the last; DDIM, DDPM, DPM-Solver++: 1);
  RePaint's walk with its jumps back (:func:`diffusion_core.tasks.inpaint.repaint_schedule`);
  the Create page's grid (guidance doubles the batch) and its guidance sweep;
* what a run does besides: scores of every step (Restore), the classical method beside the
  model (Repair), in units of the measured picture score.

The constants below were fitted once against measured runs on the development CPU
(``python -m bench.estimates`` prints estimate against measured for each page); everything
that depends on the computer comes from the measurement.

First-visit defaults: each page lists (richest first) the settings it may start with;
:func:`pick_default` takes the first whose run fits :func:`default_budget_s` (about 10 s).
``DIFFUSION_LAB_DEFAULT_SECONDS`` sets that budget; ``DIFFUSION_LAB_FIXED_DEFAULTS=1`` turns
it off (every page starts at its fixed defaults, whatever the computer). No streamlit here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from diffusion_core.app.models import open_model
from diffusion_core.jobs.restore import planned_steps
from diffusion_core.jobs.timing import Speed, speed_of
from diffusion_core.maths.samplers import get_sampler
from diffusion_core.models.registry import ModelInfo, ModelLoadError
from diffusion_core.tasks.inpaint import repaint_schedule

BUDGET_ENV = "DIFFUSION_LAB_DEFAULT_SECONDS"
FIXED_ENV = "DIFFUSION_LAB_FIXED_DEFAULTS"
BUDGET_S = 10.0  # a default run should finish in about this many seconds

# Fitted on the development CPU (bench/results/estimates.md):
RUN_START_S = 0.05  # per run: the worker thread, the cached model, the last scores
RESTORE_STEP_SCORES = 0.9  # a Restore step's scores and kept frames, in picture scores
NLM_SCORES = 2.7  # non-local means (beside blind denoising), in picture scores
INT8_CALL_SHARE = 0.6  # an 8-bit call, as a share of a full-precision one
# preparing the 8-bit network for a noise level: 8 calibration pictures through the network
# at 128 px, plus reading them, tracing and converting the network (the first preparation in
# a server process takes about 2 s more: bench/results/estimates.md)
INT8_PREPARE_CALLS, INT8_PREPARE_S = 8, 0.7

# (batch, height, width) timed: photo models at the sizes pages run them at (past 512 px a
# call costs a little more per pixel than the line through 256 and 512 px says: 12 % more at
# 1024 px on the development CPU), 32-pixel models at the batches the Create page runs (its
# grid, the guided grid, the guidance sweep)
PHOTO_SHAPES = ((1, 64, 64), (1, 128, 128), (1, 256, 256), (1, 512, 512))
DIGIT_SHAPES = ((4, 32, 32), (16, 32, 32), (32, 32, 32))

R = TypeVar("R")


def timing_shapes(info: ModelInfo) -> list[tuple[int, int, int, int]]:
    """The (N, C, H, W) shapes a model is timed at: what its pages run it on."""
    shapes = DIGIT_SHAPES if info.kind == "digits" else PHOTO_SHAPES
    return [(n, info.channels, h, w) for n, h, w in shapes]


def model_speed(info: ModelInfo, device: str | torch.device) -> Speed | None:
    """The model's measured :class:`Speed` on ``device`` (loads the model from the shared
    cache and times it the first time); None where the model cannot be loaded or run."""
    try:
        den = open_model(info.name, device)
    except ModelLoadError:
        return None
    return speed_of(info.name, den, device, timing_shapes(info))


# ---------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class Estimate:
    """A run's expected seconds on this computer, and the model calls it makes."""

    seconds: float
    calls: int
    device: str  # the measured device, for people

    @property
    def text(self) -> str:
        """"about 4 s on this computer · CPU (2 threads)": the words for the page."""
        return f"{rough_seconds(self.seconds)} on this computer · {self.device}"


def rough_seconds(s: float) -> str:
    """A duration as people say it before a run: "under 1 s", "about 4 s", "about 1 min"."""
    if s < 1:
        return "under 1 s"
    if s < 20:
        return f"about {round(s)} s"
    if s < 90:
        return f"about {5 * round(s / 5)} s"
    return f"about {max(round(s / 60), 2)} min"


def restore_estimate(speed: Speed, shape: Sequence[int], start_step: int, steps: int,
                     sampler: str, scored: bool) -> Estimate:
    """A Restore run on a (C, H, W) picture: ``steps`` asked from ``start_step`` with
    ``sampler``; ``scored``: PSNR and SSIM at every step (restoring a known picture)."""
    c, h, w = shape
    n = planned_steps(start_step, steps)
    calls = get_sampler(sampler).model_calls(n)
    extra = n * RESTORE_STEP_SCORES * speed.score_s(c * h * w) if scored else 0.0
    return Estimate(calls * speed.call_s(h * w) + extra + RUN_START_S, calls, speed.device)


def repaint_calls(steps: int, jump: int, resample: int, timesteps: int = 1000) -> int:
    """Model calls of one RePaint run: one per step down RePaint's walk, jumps included."""
    seq = repaint_schedule(min(int(steps), int(timesteps)), jump, resample)
    return sum(1 for a, b in zip(seq, seq[1:]) if b > a)


def inpaint_estimate(speed: Speed, shape: Sequence[int], steps: int, jump: int,
                     resample: int) -> Estimate:
    """A Repair fill-in (RePaint) on a (C, H, W) picture, the smooth fill beside it."""
    _, h, w = shape
    calls = repaint_calls(steps, jump, resample)
    return Estimate(calls * speed.call_s(h * w) + RUN_START_S, calls, speed.device)


def denoise_estimate(speed: Speed, shape: Sequence[int], start_step: int, steps: int,
                     one_shot: bool, int8: bool = False, prepared: bool = False) -> Estimate:
    """A Repair clean-up on a (C, H, W) picture from ``start_step`` (0: nothing to remove),
    step by step or in one call (``int8``: the 8-bit network, prepared for this noise level
    already or not), non-local means beside it."""
    c, h, w = shape
    calls = (1 if one_shot else planned_steps(start_step, steps)) if start_step > 0 else 0
    secs = calls * speed.call_s(h * w)
    if int8 and one_shot and calls:
        secs *= INT8_CALL_SHARE
        if not prepared:
            secs += INT8_PREPARE_CALLS * speed.call_s(128 * 128) + INT8_PREPARE_S
    secs += NLM_SCORES * speed.score_s(c * h * w) + RUN_START_S
    return Estimate(secs, calls, speed.device)


def create_estimate(speed: Speed, n: int, side: int, steps: int, sampler: str, guided: bool,
                    sweep: Sequence[float] = (), sweep_n: int = 0) -> Estimate:
    """A Create run: ``n`` pictures of ``side`` px in one batch (``guided``: told a label,
    both guesses every call, so twice the batch), then the sweep: ``sweep_n`` pictures
    again at each guidance strength (strengths 0 and 1 need one guess, the others two)."""
    per_run = get_sampler(sampler).model_calls(steps)
    px = side * side

    def run(batch: int) -> float:
        return per_run * speed.call_s(batch * px)

    secs = run(n * (2 if guided else 1))
    secs += sum(run(sweep_n * (1 if w in (0.0, 1.0) else 2)) for w in sweep)
    calls = per_run * (1 + len(sweep))
    return Estimate(secs + RUN_START_S, calls, speed.device)


# ---------------------------------------------------------------------- first-visit defaults


def fixed_defaults() -> bool:
    """Pages start at their fixed defaults whatever the computer (``DIFFUSION_LAB_FIXED_DEFAULTS``
    set to 1, yes or true)."""
    return os.environ.get(FIXED_ENV, "").strip().lower() in ("1", "yes", "true")


def default_budget_s() -> float | None:
    """Seconds a default run may take (``DIFFUSION_LAB_DEFAULT_SECONDS``, default 10); None
    when the pages use their fixed defaults."""
    if fixed_defaults():
        return None
    try:
        v = float(os.environ.get(BUDGET_ENV, BUDGET_S))
    except ValueError:
        return BUDGET_S
    return v if math.isfinite(v) and v > 0 else BUDGET_S


def pick_default(ladder: Sequence[R], seconds: Callable[[R], float], budget: float | None,
                 fixed: R) -> R:
    """The first (richest) setting of ``ladder`` whose run takes at most ``budget`` seconds,
    else the last (cheapest); ``fixed`` without a budget."""
    if budget is None or not ladder:
        return fixed
    return next((r for r in ladder if seconds(r) <= budget), ladder[-1])
