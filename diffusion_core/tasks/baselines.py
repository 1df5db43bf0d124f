"""The classical methods shown beside the diffusion model, each timed: biharmonic
inpainting and non-local-means denoising (scikit-image, imported when first used).

Pictures are ``(C, H, W)`` float tensors in ``[-1, 1]``; masks are ``(H, W)`` bool tensors
with ``True`` = damaged. No streamlit here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from diffusion_core.tasks.pictures import as_mask, check_image


@dataclass
class BaselineResult:
    final: torch.Tensor
    seconds: float
    name: str


def _to_hwc(x: torch.Tensor) -> np.ndarray:
    a = x.detach().cpu().double().numpy()
    return a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0))


def _from_hwc(a: np.ndarray, channels: int) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(a, dtype=np.float32))
    return t[None] if channels == 1 or t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def inpaint_biharmonic(image: torch.Tensor, mask: torch.Tensor) -> BaselineResult:
    """Classical inpainting: the smoothest surface (biharmonic equation) that meets the known
    pixels at the edges of each hole (``skimage.restoration.inpaint_biharmonic``)."""
    from skimage.restoration import inpaint_biharmonic as _biharmonic

    x = check_image(image)
    m = as_mask(mask, x)
    t0 = time.perf_counter()
    if not bool(m.any()):
        return BaselineResult(x.clone(), 0.0, "biharmonic")
    if not bool((~m).any()):
        return BaselineResult(torch.zeros_like(x), time.perf_counter() - t0, "biharmonic")
    out = _biharmonic(_to_hwc(x), m.numpy(), channel_axis=None if x.shape[0] == 1 else -1)
    filled = _from_hwc(out, x.shape[0]).clamp(-1, 1)
    return BaselineResult(torch.where(m[None], filled, x), time.perf_counter() - t0, "biharmonic")


def denoise_nlm(noisy: torch.Tensor, sigma: float, h_factor: float = 0.8) -> BaselineResult:
    """Classical denoising: non-local means (``skimage.restoration.denoise_nl_means``, fast
    mode, 5×5 patches searched within 13×13), given the noise level ``sigma`` ([-1, 1])."""
    from skimage.restoration import denoise_nl_means

    y = check_image(noisy)
    s01 = float(sigma) / 2.0  # [0, 1] units
    t0 = time.perf_counter()
    if s01 <= 0:
        return BaselineResult(y.clone(), 0.0, "nl-means")
    img = (_to_hwc(y) + 1.0) / 2.0
    out = denoise_nl_means(img, h=h_factor * s01, sigma=s01, fast_mode=True, patch_size=5,
                           patch_distance=6, channel_axis=None if y.shape[0] == 1 else -1)
    res = (_from_hwc(out, y.shape[0]) * 2.0 - 1.0).clamp(-1, 1)
    return BaselineResult(res, time.perf_counter() - t0, "nl-means")
