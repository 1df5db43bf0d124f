"""Optional: load a local folder in diffusers' format (a DDPM ``UNet2DModel`` and its scheduler
config) as one more denoiser. Needs the ``diffusers`` package; nothing is downloaded.

The diffusers U-Net predicts the noise eps_hat(x_t, t) of a discrete schedule. We wrap it as
D(y, sigma) -> x0_hat in our VE coordinates: x_t = y / sqrt(1 + sigma^2), t = the schedule
step whose sigma_t is closest to sigma, x0_hat = (x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diffusion_core.maths.schedules import alpha_bar_to_betas, cosine_alpha_bar


class DiffusersLoadError(RuntimeError):
    """A diffusers folder that cannot be used here (the package is missing or the files are bad).
    The model registry turns it into its ModelLoadError."""


def diffusers_available() -> bool:
    try:
        import diffusers  # noqa: F401
    except ImportError:
        return False
    return True


def betas_from_scheduler_config(cfg: dict) -> np.ndarray:
    """The float64 betas that diffusers' DDPMScheduler builds from this scheduler config (its
    defaults where a key is missing). diffusers' ``sigmoid`` is GeoDiff's: the betas themselves
    on a sigmoid from beta_start to beta_end, not our ``sigmoid_chen`` (see schedules.py)."""
    T = int(cfg.get("num_train_timesteps", 1000))
    kind = cfg.get("beta_schedule", "linear")
    b0, b1 = float(cfg.get("beta_start", 1e-4)), float(cfg.get("beta_end", 0.02))
    if cfg.get("trained_betas"):
        return np.asarray(cfg["trained_betas"], dtype=np.float64)
    if kind == "linear":
        return np.linspace(b0, b1, T, dtype=np.float64)
    if kind == "scaled_linear":
        return np.linspace(b0**0.5, b1**0.5, T, dtype=np.float64) ** 2
    if kind == "squaredcos_cap_v2":
        return alpha_bar_to_betas(cosine_alpha_bar, T)
    if kind == "sigmoid":
        return b0 + (b1 - b0) / (1.0 + np.exp(-np.linspace(-6.0, 6.0, T, dtype=np.float64)))
    raise ValueError(f"Unsupported beta_schedule {kind!r}")


def alpha_bar_from_scheduler_config(cfg: dict) -> np.ndarray:
    """alpha_bar_t (float64, length num_train_timesteps) of a diffusers scheduler config."""
    return np.cumprod(1.0 - betas_from_scheduler_config(cfg))


class DiffusersDenoiser(nn.Module):
    def __init__(self, unet, alpha_bar: np.ndarray):
        super().__init__()
        self.unet = unet
        self.register_buffer("alpha_bar", torch.tensor(alpha_bar, dtype=torch.float64))
        self.register_buffer("log_sigmas",
                             torch.tensor(0.5 * np.log((1 - alpha_bar) / alpha_bar)))
        self.sigma_data = 0.5

    @property
    def channels(self) -> int:
        return int(self.unet.config.in_channels)

    def forward(self, y: torch.Tensor, sigma) -> torch.Tensor:
        n = y.shape[0]
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=y.device).reshape(-1)
        if sigma.numel() == 1:
            sigma = sigma.expand(n)
        t = torch.argmin((self.log_sigmas[None, :] - torch.log(sigma.clamp_min(1e-8))[:, None])
                         .abs(), dim=1)
        ab = self.alpha_bar[t].to(torch.float32).reshape(-1, 1, 1, 1)
        x_t = y.float() / torch.sqrt(1 + sigma.float().reshape(-1, 1, 1, 1) ** 2)
        eps = self.unet(x_t, t).sample.float()
        return ((x_t - torch.sqrt(1 - ab) * eps) / torch.sqrt(ab)).to(y.dtype)


def load_diffusers_denoiser(folder: str | Path, device="cpu") -> DiffusersDenoiser:
    if not diffusers_available():
        raise DiffusersLoadError("This model is in diffusers' format; install the optional "
                                 "`diffusers` package to use it.")
    from diffusers import UNet2DModel

    folder = Path(folder)
    unet_dir = folder / "unet" if (folder / "unet" / "config.json").exists() else folder
    sched = None
    for p in (folder / "scheduler" / "scheduler_config.json", folder / "scheduler_config.json"):
        if p.exists():
            sched = json.loads(p.read_text())
            break
    try:
        unet = UNet2DModel.from_pretrained(str(unet_dir), use_safetensors=True,
                                           local_files_only=True)
    except Exception as e:  # noqa: BLE001
        raise DiffusersLoadError(f"Could not load the diffusers model in {folder.name}: "
                                 f"{type(e).__name__}") from e
    ab = alpha_bar_from_scheduler_config(sched or {})
    den = DiffusersDenoiser(unet, ab).to(device).eval()
    den.requires_grad_(False)
    return den


def equivalent_sigma(alpha_bar: float) -> float:
    return math.sqrt((1 - alpha_bar) / alpha_bar)
