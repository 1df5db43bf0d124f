"""Inpainting with an unconditional denoiser, RePaint-style (Lugmayr et al. 2022).

At every reverse step the pixels we know are replaced by the original, noised to that step's
level, so the model only has to invent the missing part, and it does so in harmony with the
rest; the state then moves down a level with the shared DDIM step
(:func:`diffusion_core.maths.samplers.ddim_step`). Optional "resampling" (jump back: re-noise
and run a stretch of steps again) lets the invented part and the known part agree better, at
the price of more model calls.

Pictures are ``(C, H, W)`` float tensors in ``[-1, 1]``; masks are ``(H, W)`` bool tensors with
``True`` = damaged. No streamlit here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from diffusion_core.maths.samplers import (
    Denoiser,
    StepCallback,
    StepInfo,
    StopSampling,
    ddim_step,
    schedule_sigmas,
)
from diffusion_core.maths.schedules import Schedule
from diffusion_core.tasks.pictures import as_mask, check_image
from diffusion_core.tasks.restore import default_schedule
from diffusion_core.units import MAX_STEPS

MAX_RESAMPLE = 20


def repaint_schedule(n: int, jump_length: int = 10, resample: int = 1) -> list[int]:
    """The order in which RePaint visits the noise levels 0..n (0 = noisiest, n = clean).

    Going down one level is a reverse (denoising) step; going up one level re-noises. Every
    ``jump_length`` levels the walk goes back up ``jump_length`` levels, ``resample - 1``
    times, so that stretch is run ``resample`` times in all (Lugmayr et al. 2022, "jump
    length" j and "resampling" r). ``resample = 1`` is plain descent. The last step (to the
    clean picture) is never repeated. About ``n * resample`` model calls."""
    n = max(int(n), 0)
    j = max(int(jump_length), 1)
    r = max(int(resample), 1)
    jumps = {k: r - 1 for k in range(j, n, j)}
    seq = [0]
    level = 0
    while level < n:
        level += 1
        seq.append(level)
        if jumps.get(level, 0) > 0:
            jumps[level] -= 1
            for _ in range(j):
                level -= 1
                seq.append(level)
    return seq


@dataclass
class InpaintResult:
    final: torch.Tensor  # (C,H,W) in [-1, 1]; known pixels exactly equal to the input
    mask: torch.Tensor  # (H,W) bool, True = filled in
    seconds: float = 0.0
    calls: int = 0  # denoiser calls made
    calls_planned: int = 0
    steps: int = 0  # reverse steps in one plain descent
    resample: int = 1
    jump_length: int = 10
    stopped: bool = False
    device: str = "cpu"
    levels: list[float] = field(default_factory=list)  # the noise levels (VE sigma) visited


def inpaint(
    denoiser: Denoiser,
    image: torch.Tensor,
    mask: torch.Tensor,
    steps: int = 50,
    resample: int = 1,
    jump_length: int = 10,
    eta: float = 1.0,
    seed: int = 0,
    schedule: Schedule | None = None,
    start_step: int | None = None,
    device: str | torch.device = "cpu",
    callback: StepCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> InpaintResult:
    """Fill in the masked pixels of ``image`` with the unconditional ``denoiser`` (RePaint).

    In the sampler's VE coordinates (state y at noise level sigma), before each model call
    the known pixels are set to ``x0 + sigma * eps`` with fresh noise, the unknown ones keep
    the sampler's state; the model's estimate then moves the state to the next level with a
    DDIM step (``eta = 1``: DDPM's ancestral step, which RePaint uses; ``eta = 0``:
    deterministic). With ``resample > 1`` every ``jump_length`` steps the state is re-noised
    back up ``jump_length`` levels (``y += sqrt(s_up^2 - s^2) z``) and that stretch is run
    again. The result keeps the known pixels exactly equal to the input.

    Args:
        image: (C, H, W) in [-1, 1]; its values under the mask are never used.
        mask: (H, W) bool, True = missing/damaged.
        steps: reverse steps from ``start_step`` to the clean picture (1..1000).
        start_step: UI noise step to start from (default: the schedule's last, pure noise);
            the unknown part then starts as the known part's mean colour plus noise.
        callback(info): per model call, a :class:`StepInfo` (``i``, ``n`` = planned calls,
            ``sigma``, ``sigma_next``, ``x``, ``denoised``, ``eps``) with ``level``,
            ``jumps`` (re-noisings so far) and ``composite`` (the current estimate with the
            known pixels pasted in, (C,H,W) on the CPU). It may raise ``StopSampling``;
            so may ``should_stop()``. The latest estimate is then returned.
    """
    x0 = check_image(image)
    m = as_mask(mask, x0)
    device = torch.device(device)
    schedule = schedule or default_schedule()
    steps = int(min(max(int(steps), 1), MAX_STEPS))
    resample = int(min(max(int(resample), 1), MAX_RESAMPLE))
    jump_length = max(int(jump_length), 1)
    result = InpaintResult(final=x0.clone(), mask=m.clone(), steps=steps, resample=resample,
                           jump_length=jump_length, device=str(device))
    if not bool(m.any()):
        return result  # nothing to fill in
    start = schedule.T if start_step is None else int(min(max(int(start_step), 1), schedule.T))
    sigmas, _ = schedule_sigmas(schedule, start - 1, steps)
    sig = [float(s) for s in sigmas]
    n = len(sig) - 1
    result.levels = sig
    seq = repaint_schedule(n, jump_length, resample)
    n_calls = sum(1 for a, b in zip(seq, seq[1:]) if b > a)
    result.calls_planned = n_calls

    gen = torch.Generator(device="cpu").manual_seed(int(seed))

    def randn() -> torch.Tensor:
        return torch.randn((1, *x0.shape), generator=gen, dtype=torch.float32).to(device)

    known = x0[None].to(device)
    keep = (~m).to(device)[None, None]  # True where the pixel is known
    fill = known[0][:, ~m.to(device)].mean(dim=1) if bool((~m).any()) else torch.zeros(x0.shape[0])
    y = torch.where(keep, known, fill.reshape(1, -1, 1, 1).to(device)) + sig[0] * randn()
    denoised = torch.where(keep, known, y)
    calls = 0
    jumps = 0
    t0 = time.perf_counter()
    try:
        with torch.inference_mode():
            for a, b in zip(seq, seq[1:]):
                if b < a:  # jump back: forward-noise from level a up to level b
                    y = y + math.sqrt(max(sig[b] ** 2 - sig[a] ** 2, 0.0)) * randn()
                    jumps += 1
                    continue
                s, s_next = sig[a], sig[b]
                # known pixels: the original at this noise level, with fresh noise
                y = torch.where(keep, known + s * randn(), y)
                denoised = denoiser(y, torch.full((1,), s, device=device)).float()
                calls += 1
                if callback is not None:
                    comp = torch.where(keep, known, denoised.clamp(-1, 1))[0].cpu()
                    callback(StepInfo(calls - 1, n_calls, s, s_next, y, denoised, level=a,
                                      jumps=jumps, composite=comp))
                if should_stop is not None and should_stop():
                    raise StopSampling
                y = ddim_step(y, denoised, s, s_next, float(eta), gen)
    except StopSampling:
        result.stopped = True
        y = denoised
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result.seconds = time.perf_counter() - t0
    result.calls = calls
    filled = y[0].float().cpu().clamp(-1, 1)
    result.final = torch.where(m[None], filled, x0)
    return result
