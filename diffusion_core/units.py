"""Units and limits shared by the whole library, so that no number is written twice.

Pictures inside the library are float tensors in [-1, 1] ("model units"). Noise levels are
standard deviations in the same units; people and papers quote them on the 0-255 scale
(sigma_255 = sigma * 127.5, so "sigma 25" is 0.196 here).
"""

from __future__ import annotations

import math
from typing import Any

import torch

# EDM's noise range (Karras et al. 2022), in model units: every network is trained on it
SIGMA_MIN: float = 0.002
SIGMA_MAX: float = 80.0

# largest seed a user may type (fits a signed 32-bit int, as every RNG here accepts)
SEED_MAX: int = 2**31 - 1

# most reverse steps any run takes (the discrete schedules have at most this many)
MAX_STEPS: int = 1000

# picture files the loaders accept, by extension (lower case, with the dot)
IMAGE_EXTS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff",
                                        ".gif"})
ZIP_EXTS: frozenset[str] = frozenset({".zip"})


def sigma_to_255(sigma: float) -> float:
    """A noise level in model units -> the 0-255 scale."""
    return float(sigma) * 127.5


def sigma_from_255(sigma_255: float) -> float:
    """A noise level on the 0-255 scale -> model units."""
    return float(sigma_255) / 127.5


def to_255(x: torch.Tensor) -> torch.Tensor:
    """Model units -> 0..255 levels, clipped and rounded (still a float tensor)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round()


def from_255(x: torch.Tensor) -> torch.Tensor:
    """0..255 levels (any dtype) -> model units (float32)."""
    return x.float() / 127.5 - 1.0


def clamp_int(v: Any, lo: int, hi: int, default: int) -> int:
    """``v`` as an int within ``[lo, hi]``; ``default`` when it is no number at all (values
    from widgets, the session or a form are never trusted)."""
    try:
        v = int(v)
    except (TypeError, ValueError, OverflowError):
        return default
    return max(lo, min(hi, v))


def clamp_float(v: Any, lo: float, hi: float, default: float) -> float:
    """``v`` as a float within ``[lo, hi]``; ``default`` when it is not a finite number."""
    try:
        v = float(v)
    except (TypeError, ValueError, OverflowError):
        return default
    return max(lo, min(hi, v)) if math.isfinite(v) else default
