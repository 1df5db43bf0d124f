"""A small denoising diffusion model for 2-D data (Ho et al., 2020; Song et al., 2021).

* Forward process: ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` for ``t = 1..T``
  (``t = 0`` is the clean data), linear beta schedule rescaled to ``T`` steps.
* Denoiser: an MLP on ``[x_t, sin/cos(2^k x_t) for k < 3, sinusoidal_embedding(t)]``
  predicting ``eps``. The sinusoidal input features of ``x_t`` (as in common toy diffusion
  code; "Fourier features", Tancik et al., 2020) let a small MLP draw the sharp boundaries
  between modes within a short budget. Trained with the plain DDPM loss
  ``|eps - eps_theta(x_t, t)|^2``, ``t`` uniform on ``1..T``; Adam, lr 3e-3; samples use an
  exponential moving average of the weights (decay 0.99 after a short warm-up), the standard DDPM practice.
* Sampling: DDPM ancestral sampling over all ``T`` steps, or deterministic DDIM
  (``eta = 0``) over an evenly spaced subset.

All arrays the result exposes are in data coordinates; noise is standard Gaussian in the
normalised coordinates the model trains in (so at ``t = T`` the cloud is a round Gaussian with
the data's overall spread).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .common import Toy2DModel, TrainResult, count_params, make_mlp, randn

__all__ = ["Diffusion", "DiffusionResult", "linear_alpha_bars"]


def linear_alpha_bars(n_steps: int) -> torch.Tensor:
    """``abar_0..abar_T`` (``abar_0 = 1``) for DDPM's linear betas rescaled to ``T`` steps."""
    scale = 1000.0 / n_steps
    betas = torch.linspace(1e-4 * scale, 0.02 * scale, n_steps, dtype=torch.float64)
    betas = betas.clamp(max=0.999)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1.0 - betas, 0)])


def timestep_embedding(t: torch.Tensor, dim: int, n_steps: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (rescaled to the usual 0..1000 range)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    args = (t.float() * (1000.0 / n_steps))[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class Diffusion(Toy2DModel):
    kind = "diffusion"
    label = "Diffusion"

    def __init__(self, generator: torch.Generator, device: torch.device | str = "cpu", *,
                 hidden: int = 172, depth: int = 3, n_steps: int = 100, emb_dim: int = 32,
                 x_freqs: int = 3, lr: float = 3e-3, ema_decay: float = 0.99):
        super().__init__(device)
        if n_steps < 2:
            raise ValueError("n_steps must be at least 2")
        self.n_steps = n_steps
        self.emb_dim = emb_dim
        self.x_freqs = x_freqs
        self.net = make_mlp(2 + 4 * x_freqs + emb_dim, hidden, depth, 2, nn.SiLU, generator)
        self.ema_decay = ema_decay
        self.n_updates = 0
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False)
        self.to(self.device)
        self.register_buffer("alpha_bars", linear_alpha_bars(n_steps).to(self.device))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)

    result_class: type[TrainResult]  # set after DiffusionResult is defined

    def param_counts(self) -> dict[str, int]:
        n = count_params(self.net)
        return {"denoiser": n, "total": n}

    def eps(self, x: torch.Tensor, t: torch.Tensor, ema: bool = False) -> torch.Tensor:
        net = self.ema_net if ema else self.net
        feats = [x]
        if self.x_freqs:
            freqs = 2.0 ** torch.arange(self.x_freqs, device=x.device, dtype=x.dtype)
            angles = (x[:, :, None] * freqs).flatten(1)
            feats += [torch.sin(angles), torch.cos(angles)]
        feats.append(timestep_embedding(t, self.emb_dim, self.n_steps))
        return net(torch.cat(feats, 1))

    def noise(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bars[t].float()[:, None]
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * eps

    def train_step(self, next_batch: Callable[[], torch.Tensor],
                   generator: torch.Generator) -> dict[str, float]:
        x0 = next_batch()
        t = torch.randint(1, self.n_steps + 1, (len(x0),), generator=generator,
                          device=generator.device).to(self.device)
        eps = randn(x0.shape, generator, self.device)
        loss = ((self.eps(self.noise(x0, t, eps), t) - eps) ** 2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        # EMA with the usual warm-up, so that short budgets are not dominated by the init.
        self.n_updates += 1
        decay = min(self.ema_decay, (1.0 + self.n_updates) / (10.0 + self.n_updates))
        with torch.no_grad():
            for p_ema, p in zip(self.ema_net.parameters(), self.net.parameters(), strict=True):
                p_ema.lerp_(p, 1.0 - decay)
        return {"loss": loss.item()}

    def timesteps(self, method: str, steps: int | None) -> list[int]:
        """Descending timesteps visited by a sampler, ending at 0."""
        if method == "ddpm":
            return list(range(self.n_steps, -1, -1))
        if method == "ddim":
            k = self.n_steps if steps is None else int(min(max(steps, 1), self.n_steps))
            ts = np.unique(np.round(np.linspace(0, self.n_steps, k + 1)).astype(int))
            return [int(t) for t in ts[::-1]]
        raise ValueError(f"Unknown sampler {method!r}; use 'ddpm' or 'ddim'.")

    @torch.no_grad()
    def reverse(self, x: torch.Tensor, generator: torch.Generator, method: str = "ddpm",
                steps: int | None = None, keep: bool = False) -> tuple[torch.Tensor, list]:
        """Run the sampler from ``x = x_T``; returns ``x_0`` and (if ``keep``) every ``x_t``."""
        ts = self.timesteps(method, steps)
        frames = [x.clone()] if keep else []
        ab = self.alpha_bars
        for t, t_prev in zip(ts[:-1], ts[1:], strict=True):
            tt = torch.full((len(x),), t, device=self.device, dtype=torch.long)
            eps = self.eps(x, tt, ema=True)
            a_t, a_prev = float(ab[t]), float(ab[t_prev])
            if method == "ddpm":
                alpha = a_t / a_prev
                beta = 1.0 - alpha
                x = (x - beta / math.sqrt(1.0 - a_t) * eps) / math.sqrt(alpha)
                if t_prev > 0:
                    var = beta * (1.0 - a_prev) / (1.0 - a_t)
                    x = x + math.sqrt(var) * randn(x.shape, generator, self.device)
            else:  # DDIM, eta = 0
                x0 = (x - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t)
                x = math.sqrt(a_prev) * x0 + math.sqrt(1.0 - a_prev) * eps
            if keep:
                frames.append(x.clone())
        return x, frames

    @torch.no_grad()
    def sample_normalised(self, n: int, generator: torch.Generator, *, method: str = "ddpm",
                          steps: int | None = None) -> torch.Tensor:
        x_T = randn((n, 2), generator, self.device)
        return self.reverse(x_T, generator, method, steps)[0]


class DiffusionResult(TrainResult):
    """Adds the views of the diffusion process: forward noising and reverse trajectories."""

    model: Diffusion

    @property
    def n_steps(self) -> int:
        return self.model.n_steps

    def alpha_bar(self, t: int) -> float:
        return float(self.model.alpha_bars[self._check_t(t)])

    def _check_t(self, t: int) -> int:
        t = int(t)
        if not 0 <= t <= self.model.n_steps:
            raise ValueError(f"t must be between 0 and {self.model.n_steps}, got {t}")
        return t

    def forward_noised(self, points: np.ndarray, t: int, generator: torch.Generator) -> np.ndarray:
        """``points`` pushed through the forward process to step ``t`` (``t = 0``: unchanged)."""
        t = self._check_t(t)
        x0 = torch.as_tensor(self.normaliser.encode(points), dtype=torch.float32,
                             device=self.model.device)
        eps = randn(tuple(x0.shape), generator, self.model.device)
        tt = torch.full((len(x0),), t, device=self.model.device, dtype=torch.long)
        return self.normaliser.decode(self.model.noise(x0, tt, eps).cpu().double().numpy())

    def reverse_trajectories(self, n: int, generator: torch.Generator, method: str = "ddpm",
                             steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Paths of ``n`` points from noise back to data.

        Returns ``(timesteps, paths)``: ``timesteps`` descending from ``T`` to 0 (length
        ``K + 1``) and ``paths`` of shape ``(K + 1, n, 2)`` where ``paths[i]`` is the cloud at
        ``timesteps[i]``.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        self.model.eval()
        x_T = randn((int(n), 2), generator, self.model.device)
        _, frames = self.model.reverse(x_T, generator, method, steps, keep=True)
        paths = np.stack([self.normaliser.decode(f.cpu().double().numpy()) for f in frames])
        return np.array(self.model.timesteps(method, steps)), paths


Diffusion.result_class = DiffusionResult
