"""PSNR and SSIM as the pages and benchmarks report them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from diffusion_core.tasks.metrics import psnr, ssim


def _u8(t: torch.Tensor) -> np.ndarray:
    return ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


@pytest.mark.parametrize("shape", [(3, 64, 48), (1, 33, 17), (3, 7, 9), (3, 300, 200)])
def test_ssim_equals_skimage(shape):
    g = torch.Generator().manual_seed(sum(shape))
    a = torch.rand(shape, generator=g) * 2 - 1
    b = (a + 0.3 * torch.randn(shape, generator=g)).clamp(-1, 1)
    ref = structural_similarity(_u8(a), _u8(b), channel_axis=2, data_range=255)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-12)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_ssim_golden_and_edge_cases():
    # a 7x7 picture has one window: closed form with its 49 pixels
    x = torch.linspace(-1, 1, 49).reshape(1, 7, 7)
    y = -x
    qx, qy = _u8(x)[..., 0].astype(np.float64), _u8(y)[..., 0].astype(np.float64)
    mx, my = qx.mean(), qy.mean()
    vx, vy = qx.var(ddof=1), qy.var(ddof=1)
    cxy = ((qx - mx) * (qy - my)).sum() / 48
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    want = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim(x, y) == pytest.approx(want, abs=1e-12) and want < 0
    assert math.isnan(ssim(torch.zeros(3, 6, 40), torch.zeros(3, 6, 40)))  # smaller than a window


def test_psnr_equals_skimage_on_8_bits():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(3, 40, 40, generator=g) * 2 - 1
    b = (a + 0.1 * torch.randn(3, 40, 40, generator=g)).clamp(-1, 1)
    ref = peak_signal_noise_ratio(_u8(a), _u8(b), data_range=255)
    assert psnr(b, a) == pytest.approx(ref, abs=1e-9)
