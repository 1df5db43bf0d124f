"""The pictures the repair tasks take: checks of their shape and mask, and the small changes
the pages and the command line make before a run (shrink, add noise, show the damage).

Pictures are ``(C, H, W)`` float tensors in ``[-1, 1]`` (C = 1 or 3); masks are ``(H, W)``
bool tensors with ``True`` = damaged.
"""

from __future__ import annotations

import torch

from diffusion_core.maths.forward import draw_noise
from diffusion_core.units import from_255, sigma_from_255, to_255


def check_image(image: torch.Tensor) -> torch.Tensor:
    """The picture as float32 if it is (C, H, W) with C = 1 or 3 and at least 4x4 pixels;
    ValueError (with a message for people) otherwise."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] not in (1, 3):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"Expected a picture of shape (C, H, W) with C = 1 or 3, got {shape}.")
    if min(image.shape[-2:]) < 4:
        raise ValueError("The picture is too small (it needs at least 4×4 pixels).")
    return image.float()


def as_mask(mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``mask`` as an (H, W) bool tensor that fits ``image``; ValueError if it does not."""
    m = torch.as_tensor(mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"The mask must be H×W, not {tuple(m.shape)}.")
    if tuple(m.shape) != tuple(image.shape[-2:]):
        raise ValueError(f"The mask is {m.shape[1]}×{m.shape[0]} pixels but the picture is "
                         f"{image.shape[-1]}×{image.shape[-2]}.")
    return m.bool()


def damaged_view(image: torch.Tensor, mask: torch.Tensor, fill: float = 1.0) -> torch.Tensor:
    """The picture as the damage leaves it: masked pixels set to ``fill`` (white)."""
    m = as_mask(mask, image)
    return torch.where(m[None], torch.full_like(image, float(fill)), image)


def fit_size(x: torch.Tensor, max_side: int) -> torch.Tensor:
    """Shrink (antialiased) so the longest side is at most ``max_side``; never enlarges.

    Note: shrinking a noisy photo also averages part of its noise away."""
    max_side = max(int(max_side), 8)
    h, w = x.shape[-2:]
    if max(h, w) <= max_side:
        return x
    s = max_side / max(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    out = torch.nn.functional.interpolate(x[None].float(), size=size, mode="bilinear",
                                          antialias=True, align_corners=False)[0]
    return out.clamp(-1, 1)


def add_noise(x: torch.Tensor, sigma_255: float, seed: int = 0, clip: bool = True,
              quantize: bool = True) -> torch.Tensor:
    """A noisy copy of ``x`` with Gaussian noise of std ``sigma_255`` (0-255 scale), clipped
    to the valid range and rounded to 8 bits like a saved photo (by default)."""
    y = x.float() + sigma_from_255(sigma_255) * draw_noise(x.shape, seed)
    if clip:
        y = y.clamp(-1, 1)
    if quantize:
        y = from_255(to_255(y))
    return y
