"""Pictures and curves of a training, for the Train page: what it learns from, what the
model makes now, and the loss curve. No streamlit here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from diffusion_core.maths.precond import EDMDenoiser
from diffusion_core.media.decode import ImageLoadError, load_image
from diffusion_core.media.photos import bundled_photo_paths, dead_leaves
from diffusion_core.media.uploads import list_images, preview_batch
from diffusion_core.media.viz import grid_image
from diffusion_core.training.data import default_train400, folder_paths
from diffusion_core.training.digits import digits_dataset
from diffusion_core.training.presets import draws_pictures
from diffusion_core.training.train import TrainConfig, preview_samples
from diffusion_core.training.worlds import WORLDS, load_split, to_tensor
from diffusion_core.units import from_255, sigma_from_255

# Digit previews: generated from pure noise. Photo previews: a noisy crop and its clean-up.
PREVIEW_SIGMA = sigma_from_255(50)


def _centre_square(t: torch.Tensor, side: int) -> torch.Tensor:
    h, w = t.shape[1:]
    s = min(h, w)
    t = t[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return torch.nn.functional.interpolate(t[None], size=(side, side), mode="area")[0]


def dataset_preview(dataset: str, folder: str | Path | None = None, n: int = 16,
                    side: int = 64) -> tuple[torch.Tensor, int]:
    """(up to n example training pictures (N,C,side,side) in [-1,1], how many there are)."""
    if dataset == "digits":
        imgs, _ = digits_dataset()
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(imgs), generator=g)[:n]
        return imgs[idx], len(imgs)
    if dataset in WORLDS:
        imgs, _ = load_split(dataset, "train", "subset")
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(imgs), generator=g)[:n]
        return to_tensor(imgs[idx.numpy()]), len(imgs)
    if dataset == "own":
        if folder is None:
            return torch.zeros(0, 3, side, side), 0
        return preview_batch(folder, n, side), len(list_images(folder))
    out = []
    paths = bundled_photo_paths()
    for p in paths[: max(0, n - 4)]:
        try:
            out.append(_centre_square(load_image(p, max_side=4 * side, mode="rgb").tensor, side))
        except ImageLoadError:
            continue
    rng = np.random.default_rng(12345)
    for _ in range(min(4, n)):
        dl = torch.from_numpy(dead_leaves(2 * side, rng, n_shapes=400)).permute(2, 0, 1)
        out.append(_centre_square(from_255(dl), side))
    extra = len(folder_paths(default_train400())) if default_train400().is_dir() else 0
    return torch.stack(out), len(paths) + 200 + extra


def dataset_overview(dataset: str, folder: str | Path | None = None
                     ) -> tuple[torch.Tensor, int, str | None]:
    """:func:`dataset_preview` for a page (24 digits or 16 pictures), which never raises:
    (pictures, how many there are, why there is no preview or None)."""
    try:
        return (*dataset_preview(dataset, folder, n=24 if draws_pictures(dataset) else 16), None)
    except Exception as e:  # noqa: BLE001 - the preview is a courtesy; training can still run
        return torch.zeros(0, 3, 8, 8), 0, f"The preview could not be drawn ({type(e).__name__})."


def photo_preview_set(data_folder: Path | None, side: int = 64) -> torch.Tensor:
    """A few fixed crops for the 'noisy -> cleaned' preview of a photo model: the visitor's
    own pictures if there are any, else three photos and one synthetic picture."""
    x = torch.zeros(0, 3, side, side)
    if data_folder is not None:
        x = preview_batch(data_folder, 4, side)
    if len(x) == 0:
        x, _ = dataset_preview("photos", n=8, side=side)
        x = x[[0, 1, 2, len(x) - 1]] if len(x) >= 5 else x[:4]  # 3 photos, 1 synthetic
    return x


@torch.inference_mode()
def draw_preview(ema: torch.nn.Module, cfg: TrainConfig, device: torch.device,
                 photo_set: torch.Tensor | None = None, n_digits: int = 16):
    """A picture of what the EMA weights can do now: digits from pure noise (a 4x4 grid),
    or for photo models one row of noisy crops above the model's clean-up of them."""
    den = EDMDenoiser(ema)
    if draws_pictures(cfg.kind):
        x = preview_samples(den, cfg, device, n=n_digits)
        return grid_image(x, nrow=int(math.ceil(math.sqrt(n_digits))))
    clean = photo_set if photo_set is not None and len(photo_set) else torch.zeros(1, 3, 64, 64)
    g = torch.Generator().manual_seed(4321)
    noisy = clean + PREVIEW_SIGMA * torch.randn(clean.shape, generator=g)
    out = den(noisy.to(device), PREVIEW_SIGMA).float().cpu().clamp(-1, 1)
    return grid_image(torch.cat([noisy.clamp(-1, 1), out]), nrow=len(clean))


def loss_curve(losses: list[tuple[int, float]], max_points: int = 400):
    """(steps, mean loss) averaged into at most max_points consecutive bins."""
    if not losses:
        return [], []
    arr = np.asarray(losses, dtype=np.float64)
    k = max(1, math.ceil(len(arr) / max(1, max_points)))
    n = len(arr) // k * k
    head = arr[:n].reshape(-1, k, 2).mean(1) if n else np.zeros((0, 2))
    if n < len(arr):
        head = np.concatenate([head, arr[n:].mean(0, keepdims=True)])
    return head[:, 0].round().astype(int).tolist(), head[:, 1].tolist()
