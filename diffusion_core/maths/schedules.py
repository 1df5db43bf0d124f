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

The schedules (SCHEDULE_NOTES says the same in words for the pages):

* ``linear``: Ho et al. (2020), ``linspace(1e-4, 0.02, 1000)`` exactly at T = 1000;
* ``linear_vp``: the same line as a continuous curve, integrated per step (T-invariant);
* ``cosine``: Nichol & Dhariwal (2021), diffusers' ``squaredcos_cap_v2``;
* ``sigmoid_chen``: Chen (2023), alpha_bar on a sigmoid (old name ``sigmoid``, still accepted);
  not diffusers' ``sigmoid``, which puts the betas on a sigmoid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SCHEDULES = ("linear", "linear_vp", "cosine", "sigmoid_chen")
# Older names still accepted by make_schedule (the command line and saved settings may pass them).
SCHEDULE_ALIASES = {"sigmoid": "sigmoid_chen"}
T_MIN, T_MAX, T_DEFAULT = 10, 4000, 1000

# Short names for menus, and one sentence each that a page can show beside them.
SCHEDULE_LABELS = {
    "linear": "Linear (Ho et al. 2020)",
    "linear_vp": "Linear, same curve for every T",
    "cosine": "Cosine (Nichol & Dhariwal 2021)",
    "sigmoid_chen": "Sigmoid (Chen 2023)",
}
SCHEDULE_NOTES = {
    "linear": "Linear (Ho et al. 2020): the noise added per step rises in a straight line from "
              "0.0001 to 0.02 over T = 1000 steps (both ends times 1000 / T for other T); the "
              "picture is gone well before the end.",
    "linear_vp": "Linear, same curve for every T: Ho et al.'s straight line taken as a continuous "
                 "curve (Song et al.'s VP-SDE) and summed exactly over each step, so the picture at "
                 "a given fraction of the way looks the same whatever T is; at T = 1000 it starts "
                 "10 % noisier than Ho et al.'s.",
    "cosine": "Cosine (Nichol & Dhariwal 2021): destroys the picture more gently and evenly.",
    "sigmoid_chen": "Sigmoid (Chen 2023): the share of the picture left (ᾱ) falls along an S-curve, "
                    "so the picture lasts longer, then drops quickly in the middle; this is not what "
                    "the diffusers library calls `sigmoid`, where the noise added per step (β) rises "
                    "along an S-curve from 0.0001 to 0.02, which at T = 1000 leaves 30 % of ᾱ half-way "
                    "instead of 50 %.",
}
SIGMOID_VS_DIFFUSERS = SCHEDULE_NOTES["sigmoid_chen"]
MAX_BETA = 0.999


def canonical_schedule(name: str, default: str = "linear") -> str:
    """The schedule's current name: an old alias is mapped, an unknown name gives ``default``."""
    name = SCHEDULE_ALIASES.get(name, name)
    return name if name in SCHEDULES else default


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al. (2020): betas on a straight line, ``linspace(1e-4, 0.02, 1000)`` at T = 1000.

    For other T both ends are scaled by 1000 / T, as in Nichol & Dhariwal's code, so the total
    noise added stays about the same (diffusers' DDPMScheduler instead keeps 1e-4 .. 0.02 for
    every T). For T < 20 the last betas pass 1 and make_schedule caps them at MAX_BETA: those
    steps are pure noise."""
    scale = 1000.0 / T
    return np.linspace(beta_start * scale, beta_end * scale, T, dtype=np.float64)


def linear_vp_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al.'s line as a continuous curve, the same alpha_bar(t / T) for every T.

    The VP-SDE of Song et al. with beta(u) = 1000 * (beta_start + (beta_end - beta_start) * u)
    is integrated exactly over each step: alpha_bar at u = (t + 1) / T is
    exp(-(b0 u + (b1 - b0) u^2 / 2)) with b0, b1 = 1000 * (beta_start, beta_end). Not Ho et
    al.'s numbers: at T = 1000 beta_0 is 1.1e-4 instead of 1e-4."""
    b0, b1 = beta_start * 1000.0, beta_end * 1000.0
    u = np.arange(T + 1, dtype=np.float64) / T
    integral = b0 * u + 0.5 * (b1 - b0) * u**2
    return -np.expm1(-(integral[1:] - integral[:-1]))


def alpha_bar_to_betas(alpha_bar_fn, T: int, max_beta: float = MAX_BETA) -> np.ndarray:
    """Betas of T steps whose alpha_bar follows the continuous ``alpha_bar_fn(u)``, u in [0, 1]:
    beta_t = 1 - alpha_bar((t + 1) / T) / alpha_bar(t / T), capped at ``max_beta`` (the
    discretisation of Nichol & Dhariwal, also diffusers' ``betas_for_alpha_bar``)."""
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
    """Chen (2023), also Jabri et al. (2022): alpha_bar(u) itself is a shifted, rescaled
    sigmoid falling from 1 at u = 0 to 0 at u = 1 (clipped at 1e-12). Not diffusers'
    ``sigmoid`` beta_schedule, which puts the betas (not alpha_bar) on a sigmoid."""

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
    """Build a schedule by name (one of SCHEDULES, or an old name in SCHEDULE_ALIASES) with
    T steps (clamped to 10..4000); betas are kept in [1e-8, MAX_BETA]."""
    name = SCHEDULE_ALIASES.get(name, name)
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")
    T = clamp_T(T)
    if name == "linear":
        betas = linear_betas(T)
    elif name == "linear_vp":
        betas = linear_vp_betas(T)
    elif name == "cosine":
        betas = alpha_bar_to_betas(cosine_alpha_bar, T)
    else:
        betas = alpha_bar_to_betas(sigmoid_alpha_bar, T)
    betas = np.clip(betas, 1e-8, MAX_BETA)
    return Schedule(name=name, T=T, betas=betas)
