"""Train GAN, VAE and diffusion side by side and compare them over seeds.

Seeding: ``seed`` fixes everything. The datasets are drawn from ``numpy.random.default_rng(seed)``
(training set first, then the held-out set); each model gets its own ``torch.Generator``
seeded from ``(seed, model)`` for training and another for the evaluation samples, so adding
or reordering models never changes another model's run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .common import Budget, StepCallback, Toy2DModel, Trainer, TrainResult, fit
from .datasets import Dataset2D, make_dataset
from .diffusion import Diffusion
from .gan import GAN, WGANGP
from .metrics import Toy2DMetrics, evaluate
from .vae import VAE

__all__ = [
    "DEFAULT_MODELS",
    "MODELS",
    "SeedRun",
    "SeedStudy",
    "build_model",
    "eval_generator",
    "evaluate_result",
    "make_split",
    "param_table",
    "run_seeds",
    "train_generator",
    "train_model",
    "train_side_by_side",
]

#: Model keys and classes. "wgan_gp" is the optional "fixed" GAN.
MODELS: dict[str, type[Toy2DModel]] = {
    "gan": GAN,
    "vae": VAE,
    "diffusion": Diffusion,
    "wgan_gp": WGANGP,
}
DEFAULT_MODELS: tuple[str, ...] = ("gan", "vae", "diffusion")
N_TRAIN = 4000
N_EVAL = 2000
N_SAMPLES = 2000

#: ``callback(model_key, step, losses, snapshot)`` for side-by-side training.
SideBySideCallback = Callable[[str, int, dict[str, float], "np.ndarray | None"], None]
#: ``progress(done, total, message)``.
ProgressCallback = Callable[[int, int, str], None]


def _model_index(kind: str) -> int:
    if kind not in MODELS:
        raise ValueError(f"Unknown model {kind!r}; choose one of {', '.join(MODELS)}.")
    return list(MODELS).index(kind)


def train_generator(seed: int, kind: str) -> torch.Generator:
    """The torch generator that initialises and trains model ``kind`` for ``seed``."""
    return torch.Generator().manual_seed(int(seed) * 1000 + 2 * _model_index(kind))


def eval_generator(seed: int, kind: str) -> torch.Generator:
    """The torch generator for the evaluation samples of model ``kind`` for ``seed``."""
    return torch.Generator().manual_seed(int(seed) * 1000 + 2 * _model_index(kind) + 1)


def build_model(kind: str, generator: torch.Generator, device: torch.device | str = "cpu",
                **kwargs) -> Toy2DModel:
    """A fresh, untrained model ``kind`` (see :data:`MODELS`)."""
    _model_index(kind)
    return MODELS[kind](generator, device, **kwargs)


def train_model(kind: str, data: np.ndarray, budget: Budget | None = None, *,
                generator: torch.Generator, device: torch.device | str = "cpu",
                callback: StepCallback | None = None, **model_kwargs) -> TrainResult:
    """Build and train one model; ``data`` is an ``(n, 2)`` array of training points."""
    model = build_model(kind, generator, device, **model_kwargs)
    return fit(model, data, budget or Budget(), generator, callback)


def param_table(device: torch.device | str = "cpu",
                kinds: Iterable[str] = tuple(MODELS)) -> dict[str, dict[str, int]]:
    """Trainable parameter counts of each model at its default size."""
    return {k: build_model(k, torch.Generator().manual_seed(0), device).param_counts()
            for k in kinds}


def make_split(name: str, rng: np.random.Generator, n_train: int = N_TRAIN,
               n_eval: int = N_EVAL, **dataset_kwargs) -> tuple[Dataset2D, Dataset2D]:
    """A training set and an independent held-out set of the same dataset."""
    train = make_dataset(name, n_train, rng, **dataset_kwargs)
    held_out = make_dataset(name, n_eval, rng, **dataset_kwargs)
    return train, held_out


def evaluate_result(result: TrainResult, held_out: Dataset2D, generator: torch.Generator,
                    n_samples: int = N_SAMPLES) -> tuple[Toy2DMetrics, np.ndarray]:
    """Draw ``n_samples`` from a trained model and score them against held-out data."""
    samples = result.sample(n_samples, generator)
    return evaluate(samples, held_out), samples


def train_side_by_side(data: np.ndarray, kinds: Sequence[str] = DEFAULT_MODELS,
                       budget: Budget | None = None, *, seed: int = 0,
                       device: torch.device | str = "cpu",
                       callback: SideBySideCallback | None = None) -> dict[str, TrainResult]:
    """Train several models on the same data, interleaved ``snapshot_every`` steps at a time.

    Every model has its own generator (:func:`train_generator`), so the results are the same
    as training each alone. The callback sees ``(model_key, step, losses, snapshot)``.
    """
    budget = (budget or Budget()).clamped()
    trainers = {k: Trainer(build_model(k, g := train_generator(seed, k), device), data, budget, g)
                for k in kinds}
    while not all(t.done for t in trainers.values()):
        for kind, trainer in trainers.items():
            if trainer.done:
                continue
            cb = None if callback is None else (lambda s, losses, x, k=kind: callback(k, s, losses, x))
            trainer.run(budget.snapshot_every, cb)
    return {k: t.result() for k, t in trainers.items()}


@dataclass(frozen=True)
class SeedRun:
    seed: int
    model: str
    metrics: Toy2DMetrics
    train_seconds: float
    diverged: bool


@dataclass
class SeedStudy:
    """All runs of :func:`run_seeds` plus per-model summaries."""

    dataset: str
    budget: Budget
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    runs: list[SeedRun] = field(default_factory=list)
    wall_seconds: float = 0.0

    def summary(self) -> dict[str, dict[str, float | None]]:
        """Per model: mean modes covered, share of runs covering all modes, mean high-quality
        share, mean energy distance, mean training seconds (``None`` where not defined)."""
        out: dict[str, dict[str, float | None]] = {}
        for kind in self.models:
            runs = [r for r in self.runs if r.model == kind]
            if not runs:
                continue
            m = [r.metrics for r in runs]
            has_modes = m[0].n_modes is not None
            out[kind] = {
                "runs": len(runs),
                "n_modes": m[0].n_modes,
                "modes_covered_mean": (float(np.mean([x.modes_covered for x in m]))
                                       if has_modes else None),
                "all_modes_share": (float(np.mean([bool(x.all_modes_covered) for x in m]))
                                    if has_modes else None),
                "high_quality_mean": (float(np.mean([x.high_quality_share for x in m]))
                                      if has_modes else None),
                "energy_distance_mean": float(np.mean([x.energy_distance for x in m])),
                "energy_distance_median": float(np.median([x.energy_distance for x in m])),
                "train_seconds_mean": float(np.mean([r.train_seconds for r in runs])),
                "diverged_runs": int(sum(r.diverged for r in runs)),
            }
        return out

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "budget": asdict(self.budget),
            "models": list(self.models),
            "seeds": list(self.seeds),
            "wall_seconds": self.wall_seconds,
            "summary": self.summary(),
            "runs": [{"seed": r.seed, "model": r.model, "train_seconds": r.train_seconds,
                      "diverged": r.diverged, **r.metrics.to_dict()} for r in self.runs],
        }


def run_seeds(dataset: str, seeds: Iterable[int] = range(10),
              kinds: Sequence[str] = DEFAULT_MODELS, budget: Budget | None = None, *,
              device: torch.device | str = "cpu", n_train: int = N_TRAIN,
              n_eval: int = N_EVAL, n_samples: int = N_SAMPLES,
              progress: ProgressCallback | None = None,
              model_kwargs: Mapping[str, dict] | None = None, **dataset_kwargs) -> SeedStudy:
    """Train every model in ``kinds`` once per seed on ``dataset`` and score it;
    ``model_kwargs[kind]`` (optional) changes that model's settings."""
    seeds = tuple(int(s) for s in seeds)
    budget = (budget or Budget()).clamped()
    # Snapshots are not needed here; one at the very end costs next to nothing.
    budget = Budget(budget.steps, budget.batch_size, budget.steps, min(budget.snapshot_n, 100))
    study = SeedStudy(dataset, budget, tuple(kinds), seeds)
    total, done = len(seeds) * len(kinds), 0
    t0 = time.perf_counter()
    for seed in seeds:
        train, held_out = make_split(dataset, np.random.default_rng(seed), n_train, n_eval,
                                     **dataset_kwargs)
        for kind in kinds:
            if progress is not None:
                progress(done, total, f"seed {seed}: training {MODELS[kind].label}")
            result = train_model(kind, train.points, budget,
                                 generator=train_generator(seed, kind), device=device,
                                 **(model_kwargs or {}).get(kind, {}))
            metrics, _ = evaluate_result(result, held_out, eval_generator(seed, kind), n_samples)
            study.runs.append(SeedRun(seed, kind, metrics, result.train_seconds, result.diverged))
            done += 1
    study.wall_seconds = time.perf_counter() - t0
    if progress is not None:
        progress(done, total, "done")
    return study
