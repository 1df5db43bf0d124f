"""The reverse process as one call: noise an image to a step (or start from pure noise),
run a sampler with the denoiser, and collect frames, metrics and timings.

Used by the Restore page (through :mod:`diffusion_core.jobs.restore`), blind denoising, the
steps study, the CLI and the benchmarks. Also the schedule the repair tasks use by default.
No streamlit here.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from diffusion_core.maths.forward import draw_noise, sigma_at_step, x_at_step
from diffusion_core.maths.samplers import (
    Denoiser,
    StepCallback,
    StepInfo,
    StopSampling,
    get_sampler,
    sample,
    spaced_sigmas,
    to_vp,
)
from diffusion_core.maths.schedules import Schedule, make_schedule
from diffusion_core.tasks.metrics import psnr, ssim
from diffusion_core.units import MAX_STEPS

#: the schedule (name, T) whose levels inpainting and blind denoising visit unless given one
DEFAULT_SCHEDULE = ("linear", 1000)


def default_schedule() -> Schedule:
    return make_schedule(*DEFAULT_SCHEDULE)


@dataclass
class Frame:
    i: int
    step: int  # UI noise step (0..T) of the state before this sampler step
    sigma: float
    x_t: torch.Tensor  # DDPM-space state (what the audience sees), CPU float32
    x0_hat: torch.Tensor
    eps_hat: torch.Tensor


@dataclass
class RestoreResult:
    final: torch.Tensor  # (C,H,W) in [-1,1] (clipped)
    start: torch.Tensor  # the noisy start x_t (DDPM space)
    frames: list[Frame] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)  # per step, vs the original
    final_metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    steps_run: int = 0
    steps_requested: int = 0
    device: str = "cpu"
    peak_memory_mb: float | None = None
    stopped: bool = False
    note: str = ""  # e.g. why the run moved from the GPU to the CPU
    noise: torch.Tensor | None = None
    timesteps: list[int] = field(default_factory=list)

    @property
    def steps_per_s(self) -> float:
        return self.steps_run / self.seconds if self.seconds > 0 else float("nan")


def restore(
    denoiser: Denoiser,
    image: torch.Tensor | None,
    schedule: Schedule,
    step: int,
    steps: int,
    sampler: str = "ddim",
    seed: int = 0,
    eta: float = 0.0,
    device: str | torch.device = "cpu",
    callback: StepCallback | None = None,
    keep_frames: bool = True,
    frame_every: int = 1,
    shape: tuple | None = None,
    noisy_input: torch.Tensor | None = None,
    should_stop: Callable[[], bool] | None = None,
    compute_metrics: bool = True,
    spacing: str = "auto",
) -> RestoreResult:
    """Noise ``image`` (C,H,W in [-1,1]) to UI ``step`` with the seed's noise (the same path
    the Add-noise page shows), then run ``steps`` sampler steps back to a clean image.

    * ``image=None`` with ``shape`` and ``step = T``: generation from pure noise.
    * ``noisy_input``: start from this already-noisy image (VP space at ``step``) instead.
    * ``spacing``: which noise levels to visit, "uniform" (evenly spaced timesteps), "karras"
      or "auto" (Karras for DPM-Solver++ and Heun, uniform for DDPM/DDIM); the number of
      steps is the same either way.
    * ``eta`` (and any option) reaches only the samplers that take it (:func:`sample`).
    * ``callback(info)`` receives the sampler's :class:`StepInfo` with ``step`` (UI step),
      ``x_t`` (the DDPM-space state) and ``x0_hat`` added, and may raise StopSampling; so may
      ``should_stop()``.
    """
    spec = get_sampler(sampler)
    device = torch.device(device)
    T = schedule.T
    step = int(min(max(step, 0), T))
    steps = int(min(max(steps, 1), MAX_STEPS))
    if image is not None:
        x0 = image.float()
        shape = tuple(x0.shape)
    elif noisy_input is not None:
        x0, shape = None, tuple(noisy_input.shape)
    else:
        if shape is None:
            raise ValueError("Give an image or a shape")
        x0 = None
    noise = draw_noise(shape, seed)
    if noisy_input is not None:
        x_start = noisy_input.float()
    elif x0 is not None:
        x_start = x_at_step(x0, noise, schedule, step)
    else:
        x_start = noise.clone()  # pure noise: the last step is (nearly) N(0, I)
    result = RestoreResult(final=x_start.clamp(-1, 1), start=x_start, device=str(device),
                           steps_requested=steps, noise=noise)
    if step == 0:
        result.final = x_start.clamp(-1, 1)
        if x0 is not None and compute_metrics:
            result.final_metrics = {"psnr": psnr(result.final, x0), "ssim": ssim(result.final, x0)}
        return result
    sigmas, ts = spaced_sigmas(schedule, step - 1, steps,
                               spec.spacing if spacing == "auto" else spacing)
    result.timesteps = [t + 1 for t in ts]
    sig0 = sigma_at_step(schedule, step)
    y = (x_start * math.sqrt(1.0 + sig0**2))[None].to(device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed) + 1)
    frames: list[Frame] = []
    metrics: list[dict] = []
    n_done = [0]

    def cb(info: StepInfo) -> None:
        i = info.i
        n_done[0] = i + 1
        s = info.sigma
        ui_step = result.timesteps[i] if i < len(result.timesteps) else 0
        x_t = to_vp(info.x, s)[0].float().cpu()
        x0_hat = info.denoised[0].float().cpu()
        if compute_metrics and x0 is not None:
            metrics.append({"i": i, "step": ui_step, "sigma": s,
                            "psnr": psnr(x0_hat, x0), "ssim": ssim(x0_hat, x0)})
        if keep_frames and (i % max(frame_every, 1) == 0 or i == info.n - 1):
            frames.append(Frame(i, ui_step, s, x_t, x0_hat.clamp(-1, 1),
                                info.eps[0].float().cpu()))
        if callback is not None:
            callback(replace(info, step=ui_step, x_t=x_t, x0_hat=x0_hat))
        if should_stop is not None and should_stop():
            raise StopSampling

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    try:
        # half precision on CUDA (fp16 autocast); full precision elsewhere
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16,
                                                    enabled=device.type == "cuda"):
            out = sample(sampler, denoiser, y, sigmas.to(device), generator=gen, callback=cb,
                         eta=eta)
    except torch.OutOfMemoryError:
        # Fall back to the CPU with a private copy of the model (the shared one stays put),
        # restarting the run from the same noisy start; say so instead of crashing.
        if device.type == "cuda":
            torch.cuda.empty_cache()
        frames.clear()
        metrics.clear()
        n_done[0] = 0
        cpu = torch.device("cpu")
        den_cpu = copy.deepcopy(denoiser).to(cpu).float()
        gen = torch.Generator(device="cpu").manual_seed(int(seed) + 1)
        with torch.inference_mode():
            out = sample(sampler, den_cpu, y.to(cpu).float(), sigmas, generator=gen,
                         callback=cb, eta=eta)
        result.note = (f"The {device.type.upper()} ran out of memory, so this run was "
                       "finished on the CPU (slower). A smaller working size avoids this.")
        device = cpu
        result.device = "cpu"
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        result.peak_memory_mb = torch.cuda.max_memory_allocated(device) / 2**20
    result.seconds = time.perf_counter() - t0
    result.steps_run = n_done[0]
    result.stopped = n_done[0] < len(sigmas) - 1
    result.final = out[0].float().cpu().clamp(-1, 1)
    result.frames = frames
    result.metrics = metrics
    if x0 is not None and compute_metrics:
        result.final_metrics = {"psnr": psnr(result.final, x0), "ssim": ssim(result.final, x0),
                                # the noisy start seen at image scale: x0 + sigma * eps
                                "noisy_psnr": psnr(x_start * math.sqrt(1 + sig0**2), x0)}
        if metrics:
            result.final_metrics["one_step_x0_psnr"] = metrics[0]["psnr"]
    return result
