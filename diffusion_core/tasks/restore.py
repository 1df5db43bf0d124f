"""The reverse process as one call: noise an image to a step (or start from pure noise),
run a sampler with the denoiser, and collect frames, metrics and timings.

Used by the Restore page, the CLI and the benchmarks. No streamlit here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from diffusion_core.maths.forward import draw_noise, sigma_at_step, x_at_step
from diffusion_core.maths.samplers import (
    SAMPLERS,
    StopSampling,
    default_spacing,
    karras_schedule_sigmas,
    schedule_sigmas,
    to_vp,
)
from diffusion_core.maths.schedules import Schedule

MAX_STEPS = 1000


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


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two images in [-1, 1], after clipping and rounding to 8 bits."""
    qa = ((a.clamp(-1, 1) + 1) * 127.5).round()
    qb = ((b.clamp(-1, 1) + 1) * 127.5).round()
    mse = torch.mean((qa.double() - qb.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM of two (C,H,W) images in [-1,1] after 8-bit quantisation: the same number as
    ``skimage.metrics.structural_similarity(qa, qb, channel_axis=2, data_range=255)``
    (Wang et al. 2004 with its defaults: 7x7 uniform window, sample covariance, K1 = 0.01,
    K2 = 0.03, the window-wide border left out, mean over channels), computed in torch in
    float64 because the Restore page scores every step (about 15x faster than skimage)."""
    qa = ((a.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().double()
    qb = ((b.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().double()
    win = 7
    if min(qa.shape[-2:]) < win:
        return float("nan")
    x, y = qa.reshape(-1, *qa.shape[-2:]), qb.reshape(-1, *qb.shape[-2:])
    # the 'valid' part of a 7x7 mean filter of the five maps at once, by running sums
    c = torch.nn.functional.pad(torch.stack([x, y, x * x, y * y, x * y]), (1, 0, 1, 0))
    c = c.cumsum(-1).cumsum(-2)
    m = (c[..., win:, win:] - c[..., :-win, win:] - c[..., win:, :-win]
         + c[..., :-win, :-win]) / (win * win)
    ux, uy = m[0], m[1]
    cov_norm = win * win / (win * win - 1.0)
    vx = cov_norm * (m[2] - ux * ux)
    vy = cov_norm * (m[3] - uy * uy)
    vxy = cov_norm * (m[4] - ux * uy)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean(dim=(1, 2)).mean())


def pick_device(name: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU, unless a device is named."""
    if name and name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


def restore(
    denoiser,
    image: torch.Tensor | None,
    schedule: Schedule,
    step: int,
    steps: int,
    sampler: str = "ddim",
    seed: int = 0,
    eta: float = 0.0,
    device: str | torch.device = "cpu",
    callback: Callable[[dict], None] | None = None,
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
    * ``callback(info)`` receives the sampler's per-step dict plus ``step`` (UI step) and
      ``x_t`` (the DDPM-space state), and may raise StopSampling; so may ``should_stop()``.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}")
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
    if spacing == "auto":
        spacing = default_spacing(sampler)
    if spacing == "karras":
        sigmas, ts = karras_schedule_sigmas(schedule, step - 1, steps)
    else:
        sigmas, ts = schedule_sigmas(schedule, step - 1, steps)
    result.timesteps = [t + 1 for t in ts]
    sig0 = sigma_at_step(schedule, step)
    y = (x_start * math.sqrt(1.0 + sig0**2))[None].to(device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed) + 1)
    frames: list[Frame] = []
    metrics: list[dict] = []
    n_done = [0]

    def cb(info: dict) -> None:
        i = info["i"]
        n_done[0] = i + 1
        s = info["sigma"]
        ui_step = result.timesteps[i] if i < len(result.timesteps) else 0
        x_t = to_vp(info["x"], s)[0].float().cpu()
        x0_hat = info["denoised"][0].float().cpu()
        eps_hat = info["eps"][0].float().cpu()
        if compute_metrics and x0 is not None:
            metrics.append({"i": i, "step": ui_step, "sigma": s,
                            "psnr": psnr(x0_hat, x0), "ssim": ssim(x0_hat, x0)})
        if keep_frames and (i % max(frame_every, 1) == 0 or i == info["n"] - 1):
            frames.append(Frame(i, ui_step, s, x_t, x0_hat.clamp(-1, 1), eps_hat))
        if callback is not None:
            callback(dict(info, step=ui_step, x_t=x_t, x0_hat=x0_hat))
        if should_stop is not None and should_stop():
            raise StopSampling

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    kw = {"eta": eta} if sampler == "ddim" else {}
    try:
        # half precision on CUDA (fp16 autocast); full precision elsewhere
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16,
                                                    enabled=device.type == "cuda"):
            out = SAMPLERS[sampler](denoiser, y, sigmas.to(device), generator=gen, callback=cb,
                                    **kw)
    except torch.OutOfMemoryError:
        # Fall back to the CPU with a private copy of the model (the shared one stays put),
        # restarting the run from the same noisy start; say so instead of crashing.
        import copy

        if device.type == "cuda":
            torch.cuda.empty_cache()
        frames.clear()
        metrics.clear()
        n_done[0] = 0
        cpu = torch.device("cpu")
        den_cpu = copy.deepcopy(denoiser).to(cpu).float()
        gen = torch.Generator(device="cpu").manual_seed(int(seed) + 1)
        with torch.inference_mode():
            out = SAMPLERS[sampler](den_cpu, y.to(cpu).float(), sigmas, generator=gen,
                                    callback=cb, **kw)
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


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def as_numpy_metrics(result: RestoreResult) -> dict:
    return {
        "steps_requested": result.steps_requested,
        "steps_run": result.steps_run,
        "seconds": round(result.seconds, 4),
        "steps_per_s": round(result.steps_per_s, 3) if result.seconds else None,
        "device": result.device,
        "timesteps": result.timesteps,
        "final": result.final_metrics,
        "per_step": result.metrics,
        "peak_gpu_memory_mb": result.peak_memory_mb,
        "stopped": result.stopped,
    }


