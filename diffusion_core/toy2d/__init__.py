""""Why diffusion?": a 2-D playground comparing a GAN, a VAE and a diffusion model.

Everything runs on the CPU in seconds with the default :class:`Budget`. Randomness is always
passed in (``numpy.random.Generator`` for data, ``torch.Generator`` for models); the device is
an argument. No streamlit here: ``pages/5_Why_diffusion.py`` is only layout and wording.

Quick tour::

    import numpy as np, torch
    from diffusion_core import toy2d

    train, held_out = toy2d.make_split("ring", np.random.default_rng(0))
    result = toy2d.train_model("diffusion", train.points, toy2d.Budget(),
                               generator=torch.Generator().manual_seed(0))
    samples = result.sample(2000, torch.Generator().manual_seed(1))
    print(toy2d.evaluate(samples, held_out))
"""

from .common import Budget, Normaliser, StepCallback, Toy2DModel, Trainer, TrainResult, fit
from .compare import (
    DEFAULT_MODELS,
    MODELS,
    SeedRun,
    SeedStudy,
    build_model,
    eval_generator,
    evaluate_result,
    make_split,
    param_table,
    run_seeds,
    train_generator,
    train_model,
    train_side_by_side,
)
from .datasets import (
    DATASETS,
    Dataset2D,
    grid_centres,
    make_dataset,
    make_drawn_dataset,
    parse_points,
    ring_centres,
)
from .diffusion import Diffusion, DiffusionResult
from .gan import GAN, WGANGP
from .metrics import (
    Toy2DMetrics,
    energy_distance,
    evaluate,
    high_quality_share,
    mode_coverage,
)
from .vae import VAE


def train_gan(data, budget=None, *, generator, device="cpu", callback=None, wgan_gp=False,
              **kwargs) -> TrainResult:
    """Train the vanilla GAN (or WGAN-GP with ``wgan_gp=True``) on ``(n, 2)`` points."""
    return train_model("wgan_gp" if wgan_gp else "gan", data, budget, generator=generator,
                       device=device, callback=callback, **kwargs)


def train_vae(data, budget=None, *, generator, device="cpu", callback=None,
              **kwargs) -> TrainResult:
    """Train the VAE on ``(n, 2)`` points."""
    return train_model("vae", data, budget, generator=generator, device=device,
                       callback=callback, **kwargs)


def train_diffusion(data, budget=None, *, generator, device="cpu", callback=None,
                    **kwargs) -> DiffusionResult:
    """Train the diffusion model on ``(n, 2)`` points; the result adds ``forward_noised`` and
    ``reverse_trajectories``."""
    return train_model("diffusion", data, budget, generator=generator, device=device,
                       callback=callback, **kwargs)


__all__ = [
    "DATASETS",
    "DEFAULT_MODELS",
    "GAN",
    "MODELS",
    "VAE",
    "WGANGP",
    "Budget",
    "Dataset2D",
    "Diffusion",
    "DiffusionResult",
    "Normaliser",
    "SeedRun",
    "SeedStudy",
    "StepCallback",
    "Toy2DMetrics",
    "Toy2DModel",
    "TrainResult",
    "Trainer",
    "build_model",
    "energy_distance",
    "eval_generator",
    "evaluate",
    "evaluate_result",
    "fit",
    "grid_centres",
    "high_quality_share",
    "make_dataset",
    "make_drawn_dataset",
    "make_split",
    "mode_coverage",
    "param_table",
    "parse_points",
    "ring_centres",
    "run_seeds",
    "train_diffusion",
    "train_gan",
    "train_generator",
    "train_model",
    "train_side_by_side",
    "train_vae",
]
