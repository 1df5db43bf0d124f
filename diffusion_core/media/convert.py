"""Conversions between the library's picture tensors and the usual array/Pillow forms.

Pictures inside the library are ``float32`` tensors of shape ``(C, H, W)``, ``C`` in ``{1, 3}``,
with values in ``[-1, 1]`` (``-1`` black, ``+1`` white; see :mod:`diffusion_core.units`).
Here they become ``[0, 1]`` floats (:func:`tensor_to_float01`), ``uint8`` arrays
(:func:`to_uint8`, and back with :func:`from_uint8`) or Pillow images (:func:`to_pil`).
Decoding files is :mod:`diffusion_core.media.decode`'s job.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from diffusion_core.units import from_255, to_255

__all__ = ["from_uint8", "tensor_to_float01", "to_pil", "to_uint8"]


def tensor_to_float01(t: torch.Tensor) -> torch.Tensor:
    """Map a ``[-1, 1]`` image tensor to ``[0, 1]`` (clamping out-of-range values)."""
    return ((t.detach().to(torch.float32) + 1.0) * 0.5).clamp_(0.0, 1.0)


def _as_chw(t: torch.Tensor) -> torch.Tensor:
    """Accept ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` with C in {1, 3}; return CHW."""
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise ValueError(
            f"expected an image tensor of shape (H, W), (C, H, W) or (1, C, H, W) with C in "
            f"{{1, 3}}, got {tuple(t.shape)}"
        )
    return t


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """Convert a ``[-1, 1]`` image tensor to a ``uint8`` array.

    Returns an ``(H, W)`` array for one channel and ``(H, W, 3)`` for three.  NaNs become
    black; values are clipped and rounded to the nearest integer level.
    """
    t = torch.nan_to_num(_as_chw(tensor).detach().to(torch.float32).cpu(), nan=-1.0)
    arr = to_255(t).to(torch.uint8).numpy()
    return arr[0] if arr.shape[0] == 1 else np.ascontiguousarray(arr.transpose(1, 2, 0))


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """Convert a ``[-1, 1]`` image tensor to a Pillow image (mode ``"L"`` or ``"RGB"``)."""
    return Image.fromarray(to_uint8(tensor))


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """Convert a ``uint8`` image array to a ``(C, H, W)`` float32 tensor in ``[-1, 1]``.

    Accepts ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` and ``(H, W, 4)``; a fourth (alpha)
    channel is flattened onto white.  Exactly inverts :func:`to_uint8`.
    """
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 array, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or 0 in arr.shape:
        raise ValueError(f"expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}")
    x = torch.from_numpy(arr.astype(np.float32))
    if x.shape[2] == 4:
        alpha = x[:, :, 3:4] / 255.0  # opacity, 0..1
        x = x[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
    return from_255(x.permute(2, 0, 1)).clamp_(-1.0, 1.0).contiguous()
