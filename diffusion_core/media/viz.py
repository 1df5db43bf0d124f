"""Pictures and chart data for the pages (no streamlit here)."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from diffusion_core.media.convert import to_uint8


def to_display(x: torch.Tensor) -> np.ndarray:
    """(C,H,W) in [-1,1] (values outside are clipped) -> HxWx3 or HxW uint8."""
    return to_uint8(x.clamp(-1, 1))


def noise_display(eps_part: torch.Tensor) -> np.ndarray:
    """Show a noise component centred on mid-gray, like the scrubber does."""
    return to_uint8(eps_part.clamp(-1, 1))


def eps_display(eps: torch.Tensor) -> np.ndarray:
    """Unit Gaussian noise around mid-gray (±2 σ fills the range), like the Add-noise page."""
    return noise_display(0.5 * eps)


def error_display(guess: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Where ``guess`` is wrong: black = right, white = off by a quarter of the range or more."""
    err = (guess - truth).abs().mean(0, keepdim=True)
    return to_display((err * 4).clamp(0, 1) * 2 - 1)


def strip_image(frames: list[torch.Tensor], labels: list[str], pad: int = 4) -> Image.Image:
    """A row of frames with a caption under each."""
    ims = [Image.fromarray(to_display(f)).convert("RGB") for f in frames]
    w, h = ims[0].size
    cap = 18
    out = Image.new("RGB", (len(ims) * (w + pad) + pad, h + cap + 2 * pad), "white")
    d = ImageDraw.Draw(out)
    for i, (im, lab) in enumerate(zip(ims, labels)):
        x = pad + i * (w + pad)
        out.paste(im, (x, pad))
        d.text((x + 2, h + pad + 3), lab, fill=(40, 40, 40))
    return out


def png_bytes(im: Image.Image | np.ndarray) -> bytes:
    if isinstance(im, np.ndarray):
        im = Image.fromarray(im)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def histogram(x: torch.Tensor, bins: int = 60, lo: float = -3.5, hi: float = 3.5):
    """Density histogram of the values of x: (bin centres, densities)."""
    v = x.detach().reshape(-1).double().numpy()
    dens, edges = np.histogram(v, bins=bins, range=(lo, hi), density=False)
    width = (hi - lo) / bins
    dens = dens / max(v.size, 1) / width
    return (edges[:-1] + edges[1:]) / 2, dens


def normal_pdf(v: np.ndarray) -> np.ndarray:
    return np.exp(-(v**2) / 2) / math.sqrt(2 * math.pi)


def grid_image(x: torch.Tensor, nrow: int | None = None, pad: int = 2) -> Image.Image:
    """(N,C,H,W) in [-1,1] -> one grid picture."""
    n, c, h, w = x.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    out = Image.new("RGB", (nrow * (w + pad) + pad, rows * (h + pad) + pad), "white")
    for i in range(n):
        im = Image.fromarray(to_display(x[i])).convert("RGB")
        out.paste(im, (pad + (i % nrow) * (w + pad), pad + (i // nrow) * (h + pad)))
    return out
