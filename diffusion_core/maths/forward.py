"""The forward (noising) process q(x_t | x_0) and the posterior q(x_{t-1} | x_t, x_0)."""

from __future__ import annotations

import numpy as np
import torch

from diffusion_core.maths.schedules import Schedule


def draw_noise(shape, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal noise drawn once for a seed (float32), reproducible across runs."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=g, dtype=torch.float32).to(device)


def q_sample(x0: torch.Tensor, t: int, noise: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """Closed form x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.

    Coefficients are computed in float64 and applied in the tensor's dtype."""
    if not 0 <= t < schedule.T:
        raise ValueError(f"t must be in [0, {schedule.T - 1}], got {t}")
    return schedule.signal_coef(t) * x0 + schedule.noise_coef(t) * noise


def q_posterior(
    x0: torch.Tensor, x_t: torch.Tensor, t: int, schedule: Schedule
) -> tuple[torch.Tensor, float]:
    """Mean and variance of q(x_{t-1} | x_t, x_0)."""
    c0, ct, var = schedule.posterior(t)
    return c0 * x0 + ct * x_t, var


def forward_frames(
    x0: torch.Tensor, noise: torch.Tensor, schedule: Schedule, ts
) -> list[torch.Tensor]:
    """x_t for each t in ``ts`` using one fixed noise draw, so the frames form one continuous
    path from the image to noise. t = -1 means the clean image."""
    out = []
    for t in ts:
        out.append(x0.clone() if t < 0 else q_sample(x0, int(t), noise, schedule))
    return out


# --------------------------------------------------------------------------- UI "steps"
# The pages count noise steps 0..T like Ho et al. (t = 1..T), with step 0 the clean image.
# Step s >= 1 is the library's 0-based timestep t = s - 1.


def mix_coefs(schedule: Schedule, step: int) -> tuple[float, float]:
    """(signal, noise) coefficients of the image and the noise at UI step 0..T."""
    if step <= 0:
        return 1.0, 0.0
    t = min(int(step), schedule.T) - 1
    return schedule.signal_coef(t), schedule.noise_coef(t)


def x_at_step(x0: torch.Tensor, noise: torch.Tensor, schedule: Schedule, step: int):
    a, b = mix_coefs(schedule, step)
    return a * x0 + b * noise


def sigma_at_step(schedule: Schedule, step: int) -> float:
    """The equivalent VE noise level at UI step (0 for the clean image)."""
    if step <= 0:
        return 0.0
    return float(schedule.sigmas[min(int(step), schedule.T) - 1])


def step_for_sigma(schedule: Schedule, sigma: float) -> int:
    """The UI step whose noise level is closest to sigma (>= 1)."""
    return schedule.t_for_sigma(sigma) + 1


def strip_steps(T: int, n: int = 8) -> list[int]:
    """n UI steps from the clean image (0) to pure noise (T), evenly spaced."""
    return [int(round(v)) for v in np.linspace(0, T, n)]
