"""Samplers for the reverse process, all with one signature.

Every sampler works in the "variance exploding" coordinates of EDM: the state is
``y = x_t / sqrt(alpha_bar_t)`` at noise level ``sigma_t`` and the denoiser returns the
predicted clean image. ``sigmas`` is a decreasing 1-D tensor of the noise levels to visit;
the last entry is normally 0 (the clean image). A DDPM/DDIM state converts with
``to_vp(y, sigma) = y / sqrt(1 + sigma^2)``.

    sampler(denoiser, y, sigmas, generator=None, callback=None, **options) -> y_final

``callback(info)`` is called once per step with a dict: ``i`` (0-based step), ``n`` (number
of steps), ``sigma`` (level before the step), ``sigma_next``, ``x`` (state before the step),
``denoised`` (x0_hat) and ``eps`` (eps_hat = (x - x0_hat) / sigma). A callback may raise
``StopSampling`` to end early; the sampler then returns the latest x0_hat.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from diffusion_core.maths.schedules import Schedule


class StopSampling(Exception):
    """Raised by a callback to stop a sampler early (the partial result is kept)."""


def to_vp(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """VE state y at level sigma -> DDPM state x_t = sqrt(alpha_bar) * y."""
    return y / math.sqrt(1.0 + float(sigma) ** 2)


def from_vp(x_t: torch.Tensor, sigma: float) -> torch.Tensor:
    return x_t * math.sqrt(1.0 + float(sigma) ** 2)


def spaced_timesteps(t_start: int, steps: int) -> list[int]:
    """``steps`` distinct timesteps from ``t_start`` down to 0 (inclusive), evenly spaced.

    The number returned is exactly ``min(steps, t_start + 1)``; t_start < 0 gives []."""
    if t_start < 0 or steps <= 0:
        return []
    steps = min(int(steps), t_start + 1)
    if steps == 1:
        return [int(t_start)]
    ts = np.round(np.linspace(t_start, 0, steps)).astype(int)
    # np.round of an even grid with steps <= t_start + 1 never collides, but be safe
    out: list[int] = []
    for t in ts:
        if not out or t < out[-1]:
            out.append(int(t))
    return out


def schedule_sigmas(schedule: Schedule, t_start: int, steps: int) -> tuple[torch.Tensor, list]:
    """Noise levels (float64 -> float32 tensor, ending with 0) for a DDPM/DDIM run from t_start
    with ``steps`` denoiser calls, and the timesteps they correspond to."""
    ts = spaced_timesteps(t_start, steps)
    s = [float(schedule.sigmas[t]) for t in ts] + [0.0]
    return torch.tensor(s, dtype=torch.float64).float(), ts


#: Which noise levels a run visits: "uniform" = evenly spaced DDPM timesteps (DDPM/DDIM as
#: published); "karras" = the same number of levels spaced as in Karras et al. 2022
#: (rho = 7, dense near the clean end), where the higher-order solvers are far more accurate
#: with few steps (bench/results/speed.md, "Which noise levels to visit").
SPACINGS = ("uniform", "karras")
HIGH_ORDER = ("dpmpp_2m", "heun")


def default_spacing(sampler: str) -> str:
    """Karras spacing for the higher-order solvers, timestep spacing for DDPM/DDIM."""
    return "karras" if sampler in HIGH_ORDER else "uniform"


def karras_schedule_sigmas(schedule: Schedule, t_start: int, steps: int,
                           rho: float = 7.0) -> tuple[torch.Tensor, list]:
    """Like :func:`schedule_sigmas` (same number of levels, the same first and last level),
    with the levels in between spaced as in Karras et al. 2022; the timesteps returned are the
    nearest DDPM timesteps (for labels only)."""
    ts_uniform = spaced_timesteps(t_start, steps)
    n = len(ts_uniform)
    if n <= 2:
        return schedule_sigmas(schedule, t_start, steps)
    table = np.asarray(schedule.sigmas, dtype=np.float64)
    hi, lo = float(table[ts_uniform[0]]), float(table[ts_uniform[-1]])
    i = np.arange(n, dtype=np.float64) / (n - 1)
    s = (hi ** (1 / rho) + i * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    s[0], s[-1] = hi, lo
    log_table = np.log(np.maximum(table, 1e-300))
    ts = [int(np.argmin(np.abs(log_table - math.log(v)))) for v in s]
    return torch.tensor(list(s) + [0.0], dtype=torch.float64).float(), ts


def edm_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
               rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022) noise levels (n levels and a final 0)."""
    i = torch.arange(n, dtype=torch.float64)
    s = (sigma_max ** (1 / rho) + i / max(n - 1, 1) * (sigma_min ** (1 / rho)
                                                        - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, torch.zeros(1, dtype=torch.float64)]).float()


def _call(denoiser, x: torch.Tensor, sigma: float) -> torch.Tensor:
    return denoiser(x, torch.full((x.shape[0],), float(sigma), device=x.device))


def _emit(callback, i, n, sigma, sigma_next, x, denoised):
    if callback is not None:
        eps = (x - denoised) / sigma if sigma > 0 else torch.zeros_like(x)
        callback({"i": i, "n": n, "sigma": float(sigma), "sigma_next": float(sigma_next),
                  "x": x, "denoised": denoised, "eps": eps})


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype,
                       device=generator.device).to(x.device)


@torch.no_grad()
def sample_ddim(denoiser, x, sigmas, generator=None, callback=None, eta: float = 0.0):
    """DDIM (Song et al. 2021). eta = 0: deterministic; eta = 1: the same transitions as
    DDPM's ancestral sampler with the posterior variance."""
    sigmas = [float(s) for s in sigmas]
    n = len(sigmas) - 1
    denoised = x
    try:
        for i in range(n):
            s, s_next = sigmas[i], sigmas[i + 1]
            denoised = _call(denoiser, x, s) if s > 0 else x
            _emit(callback, i, n, s, s_next, x, denoised)
            if s_next <= 0 or s <= 0:
                x = denoised
                continue
            eps = (x - denoised) / s
            c = 0.0
            if eta > 0:
                c = min(s_next, eta * math.sqrt(max(s_next**2 * (s**2 - s_next**2) / s**2, 0)))
            x = denoised + math.sqrt(max(s_next**2 - c**2, 0.0)) * eps
            if c > 0:
                x = x + c * _randn_like(x, generator)
    except StopSampling:
        return denoised
    return x


@torch.no_grad()
def sample_ddpm(denoiser, x, sigmas, generator=None, callback=None):
    """DDPM ancestral sampling (Ho et al. 2020): x_{t-1} ~ q(x_{t-1} | x_t, x0_hat), the
    posterior with variance beta~_t, written for any (possibly strided) pair of levels."""
    sigmas = [float(s) for s in sigmas]
    n = len(sigmas) - 1
    denoised = x
    try:
        for i in range(n):
            s, s_next = sigmas[i], sigmas[i + 1]
            denoised = _call(denoiser, x, s) if s > 0 else x
            _emit(callback, i, n, s, s_next, x, denoised)
            if s_next <= 0 or s <= 0:
                x = denoised
                continue
            # VP quantities: alpha_bar = 1 / (1 + sigma^2)
            ab, ab_prev = 1.0 / (1.0 + s * s), 1.0 / (1.0 + s_next * s_next)
            alpha = ab / ab_prev
            beta = 1.0 - alpha
            x_t = x * math.sqrt(ab)
            c0 = math.sqrt(ab_prev) * beta / (1.0 - ab)
            ct = math.sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab)
            var = beta * (1.0 - ab_prev) / (1.0 - ab)
            x_prev = c0 * denoised + ct * x_t + math.sqrt(var) * _randn_like(x, generator)
            x = x_prev / math.sqrt(ab_prev)
    except StopSampling:
        return denoised
    return x


@torch.no_grad()
def sample_heun(denoiser, x, sigmas, generator=None, callback=None):
    """Heun's 2nd-order method on the probability-flow ODE (Karras et al. 2022, Alg. 1
    without churn). Uses 2 denoiser calls per step except the last."""
    sigmas = [float(s) for s in sigmas]
    n = len(sigmas) - 1
    denoised = x
    try:
        for i in range(n):
            s, s_next = sigmas[i], sigmas[i + 1]
            denoised = _call(denoiser, x, s) if s > 0 else x
            _emit(callback, i, n, s, s_next, x, denoised)
            if s <= 0:
                continue
            d = (x - denoised) / s
            x_next = x + (s_next - s) * d
            if s_next > 0:
                denoised2 = _call(denoiser, x_next, s_next)
                d2 = (x_next - denoised2) / s_next
                x_next = x + (s_next - s) * 0.5 * (d + d2)
            x = x_next
    except StopSampling:
        return denoised
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoiser, x, sigmas, generator=None, callback=None):
    """DPM-Solver++(2M) (Lu et al. 2022): a multistep 2nd-order solver with one denoiser
    call per step, written in log-sigma time."""
    sigmas = [float(s) for s in sigmas]
    n = len(sigmas) - 1
    old_denoised = None
    h_last = None
    denoised = x
    try:
        for i in range(n):
            s, s_next = sigmas[i], sigmas[i + 1]
            denoised = _call(denoiser, x, s) if s > 0 else x
            _emit(callback, i, n, s, s_next, x, denoised)
            if s_next <= 0 or s <= 0:
                x = denoised
                continue
            t, t_next = -math.log(s), -math.log(s_next)
            h = t_next - t
            if old_denoised is None or h_last is None:
                d = denoised
            else:
                r = h_last / h
                d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (s_next / s) * x - math.expm1(-h) * d
            old_denoised, h_last = denoised, h
    except StopSampling:
        return denoised
    return x


SAMPLERS: dict[str, Callable] = {
    "ddim": sample_ddim,
    "ddpm": sample_ddpm,
    "heun": sample_heun,
    "dpmpp_2m": sample_dpmpp_2m,
}

SAMPLER_LABELS = {
    "ddim": "DDIM (deterministic when eta = 0)",
    "ddpm": "DDPM (ancestral, adds fresh noise each step)",
    "dpmpp_2m": "DPM-Solver++ (2M), high-order",
    "heun": "Heun / EDM, 2nd order (2 model calls per step)",
}
