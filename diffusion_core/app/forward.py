"""The Add-noise page: one picture, one noise draw, and the forward process at any step."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from diffusion_core.app.settings import clamp_schedule
from diffusion_core.maths.forward import draw_noise, mix_coefs, sigma_at_step, strip_steps, x_at_step
from diffusion_core.maths.schedules import SCHEDULES, Schedule, canonical_schedule, make_schedule
from diffusion_core.media.viz import strip_image
from diffusion_core.tasks.pictures import fit_size
from diffusion_core.units import SEED_MAX, clamp_int, sigma_to_255

DEFAULT_STEP = 250  # where a fresh session's slider starts (or T, if T is smaller)
#: The page shows the eight stages at most this big (a strip about 2,100 px wide, more than a
#: page column has pixels); the download is full size. At 512 px the strip was a 5.6 MB PNG
#: that took 0.3 s to encode on every run of the page (and again for the download).
STRIP_SHOWN_SIDE = 256
TINY = 1e-300  # keeps the signal-to-noise ratio finite at the last steps


@dataclass(frozen=True)
class StepView:
    """The picture at one noise step: ``x_t = a * x0 + b * noise``."""

    step: int
    a: float  # how much of the picture is left
    b: float  # how much noise is mixed in
    x_t: torch.Tensor
    noise_part: torch.Tensor  # b * noise
    sigma: float  # the equivalent noise level (model units)

    @property
    def signal(self) -> float:
        """The share of the picture's power left (alpha-bar)."""
        return self.a * self.a

    @property
    def snr(self) -> float:
        return self.signal / max(1.0 - self.signal, TINY)

    @property
    def log_snr(self) -> float:
        return math.log(max(self.snr, TINY))

    @property
    def sigma_255(self) -> float:
        return sigma_to_255(self.sigma)

    @property
    def nearly_gone(self) -> bool:
        """Almost nothing of the picture is left (SNR below 1 %)."""
        return self.snr < 0.01


@dataclass(frozen=True)
class ForwardView:
    """A picture ``x0`` (C,H,W in [-1,1]), a schedule and the seed's one noise draw: every
    step mixes the same noise in, so the steps form one path from picture to static."""

    x0: torch.Tensor
    schedule: Schedule
    seed: int
    noise: torch.Tensor

    @classmethod
    def clamped(cls, x0: torch.Tensor, schedule, T, seed) -> ForwardView:
        """From raw page values: an unknown schedule is "linear", T and the seed are clamped."""
        sched = clamp_schedule(schedule, T)
        seed = clamp_int(seed, 0, SEED_MAX, 0)
        return cls(x0, sched, seed, draw_noise(x0.shape, seed))

    @property
    def T(self) -> int:
        return self.schedule.T

    @property
    def gray(self) -> bool:
        return self.x0.shape[0] == 1

    def clamp_step(self, step, default: int | None = None) -> int:
        """A step in 0..T; ``default`` (else 0) for no number. Without a default, a fresh
        session's step (:data:`DEFAULT_STEP`, at most T)."""
        return clamp_int(step, 0, self.T, min(DEFAULT_STEP, self.T) if default is None else default)

    def at(self, step: int) -> StepView:
        step = self.clamp_step(step, 0)
        a, b = mix_coefs(self.schedule, step)
        return StepView(step, a, b, x_at_step(self.x0, self.noise, self.schedule, step),
                        b * self.noise, sigma_at_step(self.schedule, step))

    def other_schedules(self) -> list[str]:
        return [s for s in SCHEDULES if s != self.schedule.name]

    def with_schedule(self, name: str) -> ForwardView:
        """The same picture, noise and T under another schedule."""
        return ForwardView(self.x0, make_schedule(canonical_schedule(name), self.T), self.seed,
                           self.noise)

    def curves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps 1..T, alpha-bar, log SNR clipped to [-20, 20]) for the schedule's chart."""
        return (np.arange(1, self.T + 1), self.schedule.alpha_bar,
                np.clip(self.schedule.log_snr, -20, 20))

    def strip(self, n: int = 8, max_side: int | None = None) -> Image.Image:
        """``n`` stages from the picture (step 0) to pure noise (step T), captioned; each
        stage shrunk to ``max_side`` (antialiased, after the noise is mixed in, as a screen
        shows it) when given."""
        steps = strip_steps(self.T, n)
        frames = [self.at(s).x_t for s in steps]
        if max_side:
            frames = [fit_size(f, max_side) for f in frames]
        return strip_image(frames, [f"step {s}" for s in steps])

    @property
    def strip_file_name(self) -> str:
        return f"forward_{self.schedule.name}_T{self.T}_seed{self.seed}.png"
