"""Noise schedules for the discrete-time (DDPM) forward process, in float64.

A schedule of length ``T`` is described by ``beta_t`` for ``t = 0 .. T-1`` and everything
else is derived from it:

* ``alpha_t = 1 - beta_t``
* ``alpha_bar_t = prod_{s <= t} alpha_s``  (the share of signal *power* left at step t)
* ``snr_t = alpha_bar_t / (1 - alpha_bar_t)`` and ``log_snr_t``
* ``sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t)``: the noise level of the equivalent
  "variance exploding" process ``x_t / sqrt(alpha_bar_t) = x_0 + sigma_t * eps``. One
  noise-conditional denoiser ``D(x, sigma)`` therefore serves every schedule and every T.

Timesteps are 0-based: ``t = 0`` already carries a little noise (``beta_0``); the
"clean image" is addressed separately by callers (the UI shows it as t = 0 with no noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SCHEDULES = ("linear", "cosine", "sigmoid")
T_MIN, T_MAX, T_DEFAULT = 10, 4000, 1000


def _linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al. (2020): betas rising linearly from 1e-4 to 0.02 over T = 1000 steps.

    For other T the same continuous-time curve (Song et al.'s VP-SDE with
    beta(u) = 1000 * (beta_start + (beta_end - beta_start) * u)) is integrated over each
    step, so alpha_bar(t / T) is the same for every T and T = 1000 reproduces Ho et al."""
    b0, b1 = beta_start * 1000.0, beta_end * 1000.0
    u = np.arange(T + 1, dtype=np.float64) / T
    integral = b0 * u + 0.5 * (b1 - b0) * u**2
    return -np.expm1(-(integral[1:] - integral[:-1]))


def _alpha_bar_to_betas(alpha_bar_fn, T: int, max_beta: float = 0.999) -> np.ndarray:
    t = np.arange(T + 1, dtype=np.float64) / T
    ab = alpha_bar_fn(t)
    betas = 1.0 - ab[1:] / ab[:-1]
    return np.clip(betas, 0.0, max_beta)


def cosine_alpha_bar(u: np.ndarray, s: float = 0.008) -> np.ndarray:
    """Nichol & Dhariwal (2021) continuous alpha_bar(u) for u in [0, 1], normalised so
    alpha_bar(0) = 1."""
    f = np.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    return f / f0


def sigmoid_alpha_bar(u: np.ndarray, start: float = -3.0, end: float = 3.0, tau: float = 1.0):
    """Sigmoid schedule (Jabri et al. 2022 / Chen 2023): alpha_bar follows a shifted sigmoid."""

    def sig(z):
        return 1.0 / (1.0 + np.exp(-z))

    v_start = sig(start / tau)
    v_end = sig(end / tau)
    out = (-sig((u * (end - start) + start) / tau) + v_end) / (v_end - v_start)
    return np.clip(out, 1e-12, 1.0)


@dataclass(frozen=True)
class Schedule:
    """A discrete noise schedule with all derived quantities (numpy float64 arrays of length T)."""

    name: str
    T: int
    betas: np.ndarray = field(repr=False)

    @property
    def alphas(self) -> np.ndarray:
        return 1.0 - self.betas

    @property
    def alpha_bar(self) -> np.ndarray:
        return np.cumprod(self.alphas)

    @property
    def alpha_bar_prev(self) -> np.ndarray:
        return np.concatenate([[1.0], self.alpha_bar[:-1]])

    @property
    def snr(self) -> np.ndarray:
        ab = self.alpha_bar
        return ab / (1.0 - ab)

    @property
    def log_snr(self) -> np.ndarray:
        ab = self.alpha_bar
        return np.log(ab) - np.log1p(-ab)

    @property
    def sigmas(self) -> np.ndarray:
        """Equivalent VE noise level sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t)."""
        ab = self.alpha_bar
        return np.sqrt((1.0 - ab) / ab)

    def signal_coef(self, t: int) -> float:
        """sqrt(alpha_bar_t): how much of the image is left in x_t."""
        return float(math.sqrt(self.alpha_bar[t]))

    def noise_coef(self, t: int) -> float:
        """sqrt(1 - alpha_bar_t): how much noise is in x_t."""
        return float(math.sqrt(1.0 - self.alpha_bar[t]))

    def t_for_sigma(self, sigma: float) -> int:
        """The timestep whose sigma_t is closest to ``sigma`` (in log space)."""
        s = self.sigmas
        return int(np.argmin(np.abs(np.log(s) - math.log(max(sigma, 1e-12)))))

    def posterior(self, t: int) -> tuple[float, float, float]:
        """Coefficients of q(x_{t-1} | x_t, x_0) = N(c0 * x_0 + ct * x_t, var).

        Returns ``(c0, ct, var)``. For t = 0 the posterior is the clean image itself
        (c0 = 1, ct = 0, var = 0)."""
        if t <= 0:
            return 1.0, 0.0, 0.0
        ab = self.alpha_bar[t]
        ab_prev = self.alpha_bar[t - 1]
        beta = self.betas[t]
        c0 = math.sqrt(ab_prev) * beta / (1.0 - ab)
        ct = math.sqrt(self.alphas[t]) * (1.0 - ab_prev) / (1.0 - ab)
        var = beta * (1.0 - ab_prev) / (1.0 - ab)
        return float(c0), float(ct), float(var)


def clamp_T(T: int) -> int:
    """Server-side clamp of the number of diffusion steps."""
    return int(min(max(int(T), T_MIN), T_MAX))


def make_schedule(name: str = "linear", T: int = T_DEFAULT) -> Schedule:
    """Build a schedule by name ("linear", "cosine", "sigmoid") with T steps (10..4000)."""
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")
    T = clamp_T(T)
    if name == "linear":
        betas = _linear_betas(T)
    elif name == "cosine":
        betas = _alpha_bar_to_betas(cosine_alpha_bar, T)
    else:
        betas = _alpha_bar_to_betas(sigmoid_alpha_bar, T)
    betas = np.clip(betas, 1e-8, 0.999)
    return Schedule(name=name, T=T, betas=betas)
