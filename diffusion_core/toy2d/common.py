"""Shared pieces of the 2-D model zoo: budget, networks, normalisation, the training loop.

Every model is trained by the same :class:`Trainer` with the same :class:`Budget` (optimiser
steps and batch size), so the comparison between GAN, VAE and diffusion is like for like.
Randomness always comes from an explicit ``torch.Generator``: weight initialisation, batches,
noise and sampling. Global torch random state is never read or written.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

__all__ = [
    "Budget",
    "Normaliser",
    "StepCallback",
    "Toy2DModel",
    "TrainResult",
    "Trainer",
    "count_params",
    "fit",
    "make_mlp",
    "randn",
]

DEFAULT_STEPS = 2000
DEFAULT_BATCH = 256
MIN_STEPS, MAX_STEPS = 1, 20_000
MIN_BATCH, MAX_BATCH = 8, 4096
MAX_SNAPSHOT_N = 5000

#: ``callback(step, losses, snapshot)``; ``snapshot`` is an ``(n, 2)`` array of samples in data
#: coordinates every ``budget.snapshot_every`` steps (and at the last step), else ``None``.
StepCallback = Callable[[int, dict[str, float], "np.ndarray | None"], None]


def _clamp(value: int, lo: int, hi: int) -> int:
    return int(min(max(int(value), lo), hi))


@dataclass(frozen=True)
class Budget:
    """Training budget shared by all models: optimiser steps and minibatch size.

    ``snapshot_every``/``snapshot_n`` only control how often (and how many) samples the
    callback receives; they do not change training.
    """

    steps: int = DEFAULT_STEPS
    batch_size: int = DEFAULT_BATCH
    snapshot_every: int = 100
    snapshot_n: int = 500

    def clamped(self, max_steps: int = MAX_STEPS) -> Budget:
        """A copy with every field forced into its allowed range (never raises)."""
        steps = _clamp(self.steps, MIN_STEPS, min(max_steps, MAX_STEPS))
        return replace(
            self,
            steps=steps,
            batch_size=_clamp(self.batch_size, MIN_BATCH, MAX_BATCH),
            snapshot_every=_clamp(self.snapshot_every, 1, max(steps, 1)),
            snapshot_n=_clamp(self.snapshot_n, 1, MAX_SNAPSHOT_N),
        )


def randn(shape: tuple[int, ...], generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """Standard normal noise drawn from ``generator`` (on its own device), moved to ``device``."""
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def _cpu_generator(generator: torch.Generator) -> torch.Generator:
    """A CPU generator seeded from ``generator`` (used for weight init on any device)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return torch.Generator().manual_seed(seed)


def make_mlp(in_dim: int, hidden: int, depth: int, out_dim: int, act: Callable[[], nn.Module],
             generator: torch.Generator) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden``; PyTorch's default uniform init, but drawn
    from ``generator`` instead of the global RNG."""
    g = _cpu_generator(generator)
    layers: list[nn.Module] = []
    dims = [in_dim] + [hidden] * depth
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(dims[-1], out_dim))
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=g)
                layer.bias.uniform_(-bound, bound, generator=g)
    return nn.Sequential(*layers)


def count_params(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


@dataclass(frozen=True)
class Normaliser:
    """Shift to zero mean and divide by one isotropic scale (keeps circles circular)."""

    mean: np.ndarray
    scale: float

    @classmethod
    def fit(cls, points: np.ndarray) -> Normaliser:
        mean = points.mean(axis=0)
        scale = float(np.sqrt(((points - mean) ** 2).mean())) if len(points) > 1 else 1.0
        return cls(mean=mean, scale=scale if scale > 1e-8 else 1.0)

    def encode(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=np.float64) - self.mean) / self.scale

    def decode(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) * self.scale + self.mean


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float64).numpy()


@dataclass
class TrainResult:
    """A trained model with its loss history; ``sample`` returns data-coordinate points."""

    model: Toy2DModel
    normaliser: Normaliser
    history: dict[str, list[float]]
    steps_done: int
    train_seconds: float
    diverged: bool = False
    snapshots: list[tuple[int, np.ndarray]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def param_counts(self) -> dict[str, int]:
        return self.model.param_counts()

    def sample(self, n: int, generator: torch.Generator, **kwargs) -> np.ndarray:
        """``(n, 2)`` float64 samples in data coordinates."""
        if n < 1:
            raise ValueError("n must be at least 1")
        self.model.eval()
        with torch.no_grad():
            out = self.model.sample_normalised(int(n), generator, **kwargs)
        return self.normaliser.decode(_to_numpy(out))


class Toy2DModel(nn.Module):
    """Base class: a model that trains on normalised 2-D batches and samples from its fit."""

    kind = "base"
    label = "Model"
    #: The :class:`TrainResult` subclass the trainer returns for this model.
    result_class: type[TrainResult] = TrainResult

    def __init__(self, device: torch.device | str = "cpu"):
        super().__init__()
        self.device = torch.device(device)

    def train_step(self, next_batch: Callable[[], torch.Tensor],
                   generator: torch.Generator) -> dict[str, float]:
        """One optimiser step (one generator update for GANs); returns the step's losses."""
        raise NotImplementedError

    @torch.no_grad()
    def sample_normalised(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters per network plus ``"total"``."""
        raise NotImplementedError


class Trainer:
    """Steps one model through its budget; can be advanced in chunks (for side-by-side runs).

    The trainer's own ``generator`` drives batches and training noise; snapshots use a
    separate generator re-seeded identically every time, so they show the same latent/noise
    points moving and do not change the training trajectory.
    """

    def __init__(self, model: Toy2DModel, data: np.ndarray, budget: Budget,
                 generator: torch.Generator):
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != 2 or len(data) < 2:
            raise ValueError(f"training data must have shape (n >= 2, 2), got {data.shape}")
        if not np.all(np.isfinite(data)):
            raise ValueError("training data must be finite")
        self.model = model
        self.budget = budget.clamped()
        self.generator = generator
        self.normaliser = Normaliser.fit(data)
        self.data = torch.as_tensor(self.normaliser.encode(data), dtype=torch.float32,
                                    device=model.device)
        self._snapshot_seed = int(torch.randint(0, 2**62, (1,), generator=generator,
                                                device=generator.device).item())
        self.step = 0
        self.train_seconds = 0.0
        self.diverged = False
        self.history: dict[str, list[float]] = {}
        self.snapshots: list[tuple[int, np.ndarray]] = []

    @property
    def done(self) -> bool:
        return self.diverged or self.step >= self.budget.steps

    def next_batch(self) -> torch.Tensor:
        idx = torch.randint(0, len(self.data), (self.budget.batch_size,),
                            generator=self.generator, device=self.generator.device)
        return self.data[idx.to(self.data.device)]

    def snapshot(self, n: int | None = None) -> np.ndarray:
        g = torch.Generator(device=self.generator.device).manual_seed(self._snapshot_seed)
        return self.result().sample(n or self.budget.snapshot_n, g)

    def run(self, n_steps: int | None = None, callback: StepCallback | None = None) -> int:
        """Advance up to ``n_steps`` (default: to the end of the budget); returns steps taken."""
        remaining = self.budget.steps - self.step
        n_steps = remaining if n_steps is None else min(int(n_steps), remaining)
        taken = 0
        while taken < n_steps and not self.done:
            self.model.train()
            t0 = time.perf_counter()
            losses = self.model.train_step(self.next_batch, self.generator)
            self.train_seconds += time.perf_counter() - t0
            self.step += 1
            taken += 1
            for key, value in losses.items():
                self.history.setdefault(key, []).append(float(value))
            if not all(math.isfinite(v) for v in losses.values()):
                self.diverged = True
            snap = None
            if self.step % self.budget.snapshot_every == 0 or self.done:
                snap = self.snapshot()
                self.snapshots.append((self.step, snap))
            if callback is not None:
                callback(self.step, losses, snap)
        return taken

    def result(self) -> TrainResult:
        return self.model.result_class(self.model, self.normaliser, self.history, self.step,
                           self.train_seconds, self.diverged, self.snapshots)


def fit(model: Toy2DModel, data: np.ndarray, budget: Budget, generator: torch.Generator,
        callback: StepCallback | None = None) -> TrainResult:
    """Train ``model`` on ``data`` for ``budget.steps`` steps and return the result."""
    trainer = Trainer(model, data, budget, generator)
    trainer.run(callback=callback)
    return trainer.result()
