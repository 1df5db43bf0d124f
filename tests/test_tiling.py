import torch

from diffusion_core.models.registry import load_denoiser
from diffusion_core.tasks.metrics import psnr
from diffusion_core.tasks.tiling import TiledDenoiser


def test_tiled_matches_untiled_without_seams():
    den = load_denoiser("natural")
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 300, 420, generator=g) * 2 - 1, 5, 1, 2)
    y = x + 0.2 * torch.randn(x.shape, generator=g)
    with torch.inference_mode():
        full = den(y, 0.2)
        tiled = TiledDenoiser(den, tile=160, overlap=48)(y, 0.2)
    assert tiled.shape == full.shape
    assert psnr(tiled[0], full[0]) > 40.0
    # no seam: a seam is a whole row or column of error; every row and column stays small
    # (the outer 4 pixels differ by padding: the untiled run pads 300x420 to a multiple of 8)
    err = (tiled - full).abs().mean(dim=(0, 1))[4:-4, 4:-4]
    assert err.mean(dim=0).max() < 0.02 and err.mean(dim=1).max() < 0.02


def test_small_images_are_not_tiled():
    calls = []

    class Spy(torch.nn.Module):
        def forward(self, y, s):
            calls.append(tuple(y.shape))
            return y

    TiledDenoiser(Spy(), tile=64)(torch.zeros(1, 3, 64, 60), 0.1)
    assert calls == [(1, 3, 64, 60)]
    calls.clear()
    TiledDenoiser(Spy(), tile=64, overlap=16)(torch.zeros(1, 3, 100, 130), 0.1)
    assert all(h <= 64 and w <= 64 for _, _, h, w in calls) and len(calls) == 2 * 3
