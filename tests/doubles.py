"""Stand-in denoisers shared by the tests: exact ones whose answers are known in closed form, and
one that fails on purpose. A denoiser is any callable D(y, sigma) -> x0_hat in VE coordinates
(y = x0 + sigma * n), the same contract as the shipped models. Also the fixed pictures that the
golden-number tests of the shipped models use."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffusion_core.units import from_255


class Oracle(torch.nn.Module):
    """D(y, sigma) = x0: the perfect denoiser for a one-picture data set.

    ``x0`` is (C,H,W) or already batched (1,C,H,W). Every call is kept in ``calls`` as
    ``(y, sigma)`` (a copy of y and the first sigma as a float), so tests can see what a task
    asked the model."""

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.x0 = x0
        self.calls: list[tuple[torch.Tensor, float]] = []

    def forward(self, y, sigma):
        self.calls.append((y.detach().clone(), float(torch.as_tensor(sigma).reshape(-1)[0])))
        x0 = self.x0 if self.x0.dim() == y.dim() else self.x0[None]
        return x0.to(y.device).expand_as(y).clone()


class GaussianDenoiser(torch.nn.Module):
    """Exact E[x0 | y] for x0 ~ N(mu, s^2 I), y = x0 + sigma n: a linear shrink towards mu,
    not a perfect guess, so the number of sampler steps matters."""

    def __init__(self, mu: float = 0.1, s: float = 0.5):
        super().__init__()
        self.mu, self.s = mu, s

    def forward(self, y, sigma):
        sig = torch.as_tensor(sigma, dtype=y.dtype).reshape(-1, *([1] * (y.dim() - 1)))
        k = self.s**2 / (self.s**2 + sig**2)
        return self.mu + k * (y - self.mu)


class Failing(torch.nn.Module):
    """Raises ``error`` (default: a CUDA-style out-of-memory RuntimeError) on every call."""

    def __init__(self, error: BaseException | None = None):
        super().__init__()
        self.error = error or RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")

    def forward(self, y, sigma):
        raise self.error


def photo_crop() -> torch.Tensor:
    """A fixed 32x32 colour crop (3, 32, 32) in [-1, 1]: the astronaut's face, read straight
    from scikit-image's data folder (no resizing, so no resampler can change it)."""
    data = Path(importlib.util.find_spec("skimage").submodule_search_locations[0]) / "data"
    im = Image.open(data / "astronaut.png").convert("RGB").crop((200, 80, 232, 112))
    return from_255(torch.from_numpy(np.array(im)).permute(2, 0, 1))


def digit_crop() -> torch.Tensor:
    """A fixed handwritten digit (1, 32, 32) in [-1, 1]: number 7 of scikit-learn's digits."""
    from diffusion_core.training.digits import digits_dataset

    return digits_dataset()[0][7]
