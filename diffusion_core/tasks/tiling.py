"""Bounded-memory denoising of large images: overlapping tiles blended with linear ramps.

``TiledDenoiser(den, tile=512, overlap=64)`` behaves like ``den`` (same call signature) but
never runs the network on more than tile x tile pixels at once. Inside the overlaps the two
tiles' outputs are averaged with weights that fall linearly to the tile edge, so no seam
shows (checked by tests/test_tiling.py against the untiled result).
"""

from __future__ import annotations

import torch
from torch import nn

from diffusion_core.maths.samplers import DenoiserWrapper


def _starts(n: int, tile: int, overlap: int) -> list[int]:
    if n <= tile:
        return [0]
    stride = tile - overlap
    s = list(range(0, n - tile, stride)) + [n - tile]
    return sorted(set(s))


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool, device, dtype) -> torch.Tensor:
    w = torch.ones(n, device=device, dtype=dtype)
    k = min(overlap, n // 2)
    if k > 0:
        r = (torch.arange(k, device=device, dtype=dtype) + 0.5) / k
        if not at_start:
            w[:k] = r
        if not at_end:
            w[n - k:] = r.flip(0)
    return w


class TiledDenoiser(DenoiserWrapper):
    def __init__(self, denoiser: nn.Module, tile: int = 512, overlap: int = 64):
        super().__init__(denoiser)
        self.tile = int(tile)
        self.overlap = int(overlap)

    def forward(self, y: torch.Tensor, sigma) -> torch.Tensor:
        n, c, h, w = y.shape
        if h <= self.tile and w <= self.tile:
            return self.den(y, sigma)
        out = torch.zeros_like(y, dtype=torch.float32)
        acc = torch.zeros((1, 1, h, w), device=y.device, dtype=torch.float32)
        ys, xs = _starts(h, self.tile, self.overlap), _starts(w, self.tile, self.overlap)
        for i, y0 in enumerate(ys):
            th = min(self.tile, h - y0)
            wy = _ramp(th, self.overlap, i == 0, i == len(ys) - 1, y.device, torch.float32)
            for j, x0 in enumerate(xs):
                tw = min(self.tile, w - x0)
                wx = _ramp(tw, self.overlap, j == 0, j == len(xs) - 1, y.device, torch.float32)
                wgt = (wy[:, None] * wx[None, :])[None, None]
                d = self.den(y[:, :, y0:y0 + th, x0:x0 + tw], sigma).float()
                out[:, :, y0:y0 + th, x0:x0 + tw] += d * wgt
                acc[:, :, y0:y0 + th, x0:x0 + tw] += wgt
        return (out / acc).to(y.dtype)


def maybe_tiled(denoiser: nn.Module, h: int, w: int, max_pixels: int = 512 * 512,
                tile: int = 512, overlap: int = 64) -> nn.Module:
    """Wrap in TiledDenoiser when the image is larger than ``max_pixels``."""
    if h * w > max_pixels:
        return TiledDenoiser(denoiser, tile, overlap)
    return denoiser
