"""How close two pictures are: PSNR and SSIM as the pages and benchmarks report them, and PSNR
over a masked region. Pictures are (C, H, W) tensors in [-1, 1], scored after clipping and
rounding to 8 bits (what a saved picture holds)."""

from __future__ import annotations

import math

import torch

from diffusion_core.tasks.pictures import as_mask
from diffusion_core.units import to_255


def _psnr_of_levels(qa: torch.Tensor, qb: torch.Tensor) -> float:
    mse = torch.mean((qa.double() - qb.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two images in [-1, 1], after clipping and rounding to 8 bits."""
    return _psnr_of_levels(to_255(a), to_255(b))


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB) of two [-1, 1] pictures over the masked pixels only (all channels), after
    clipping and rounding to 8 bits like :func:`psnr`; NaN for an empty mask."""
    m = as_mask(mask, a)
    if not bool(m.any()):
        return float("nan")
    return _psnr_of_levels(to_255(a)[:, m], to_255(b)[:, m])


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM of two (C,H,W) images in [-1,1] after 8-bit quantisation: the same number as
    ``skimage.metrics.structural_similarity(qa, qb, channel_axis=2, data_range=255)``
    (Wang et al. 2004 with its defaults: 7x7 uniform window, sample covariance, K1 = 0.01,
    K2 = 0.03, the window-wide border left out, mean over channels), computed in torch in
    float64 because the Restore page scores every step (about 15x faster than skimage)."""
    qa = to_255(a.detach().float().cpu()).double()
    qb = to_255(b.detach().float().cpu()).double()
    win = 7
    if min(qa.shape[-2:]) < win:
        return float("nan")
    x, y = qa.reshape(-1, *qa.shape[-2:]), qb.reshape(-1, *qb.shape[-2:])
    # the 'valid' part of a 7x7 mean filter of the five maps at once, by running sums
    c = torch.nn.functional.pad(torch.stack([x, y, x * x, y * y, x * y]), (1, 0, 1, 0))
    c = c.cumsum(-1).cumsum(-2)
    m = (c[..., win:, win:] - c[..., :-win, win:] - c[..., win:, :-win]
         + c[..., :-win, :-win]) / (win * win)
    ux, uy = m[0], m[1]
    cov_norm = win * win / (win * win - 1.0)
    vx = cov_norm * (m[2] - ux * ux)
    vy = cov_norm * (m[3] - uy * uy)
    vxy = cov_norm * (m[4] - ux * uy)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean(dim=(1, 2)).mean())
