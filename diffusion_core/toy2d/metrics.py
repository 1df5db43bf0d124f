"""Sample-quality metrics for the 2-D playground.

Definitions (all distances Euclidean, in data coordinates):

* **Mode covered.** A sample is *assigned* to its nearest mode centre when it lies within
  ``radius_std * std`` (default 3 std) of it. For an isotropic 2-D Gaussian about 98.9% of true
  samples fall inside that disc. A mode counts as *covered* when at least
  ``max(min_count, ceil(share * n))`` samples are assigned to it, where
  ``share = min(min_share, 0.25 / k)`` (default ``min_share`` 1%; ``k`` modes, so the bar never
  exceeds a quarter of a mode's fair share) and ``min_count`` defaults to 5, so a handful of
  stray samples never counts as covering a mode.
* **High-quality share.** The fraction of samples within ``radius_std * std`` of *any* centre.
* **Energy distance.** The squared energy distance (Szekely's E-statistic, V-statistic form)
  ``2 E|X-Y| - E|X-X'| - E|Y-Y'|``: zero for identical sets, never negative, and growing
  with any difference in distribution (about ``2 * shift`` for a large shift). Compute it
  against *held-out* data, not the training set.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .datasets import Dataset2D

__all__ = [
    "ModeCoverage",
    "Toy2DMetrics",
    "coverage_threshold",
    "energy_distance",
    "evaluate",
    "high_quality_share",
    "mode_coverage",
]

RADIUS_STD = 3.0
MIN_SHARE = 0.01
MIN_COUNT = 5


@dataclass(frozen=True)
class ModeCoverage:
    counts: np.ndarray  # samples assigned to each mode
    covered: np.ndarray  # bool per mode
    threshold: int  # samples needed for a mode to count

    @property
    def n_covered(self) -> int:
        return int(self.covered.sum())

    @property
    def n_modes(self) -> int:
        return int(len(self.covered))


@dataclass(frozen=True)
class Toy2DMetrics:
    """Metrics of one sample set; mode metrics are ``None`` on datasets without modes."""

    modes_covered: int | None
    n_modes: int | None
    high_quality_share: float | None
    energy_distance: float
    n_samples: int

    @property
    def all_modes_covered(self) -> bool | None:
        if self.n_modes is None or self.modes_covered is None:
            return None
        return self.modes_covered == self.n_modes

    def to_dict(self) -> dict:
        out = asdict(self)
        out["all_modes_covered"] = self.all_modes_covered
        return out


def _as_points(x: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} must have shape (n, 2), got {arr.shape}")
    return arr


def coverage_threshold(n_samples: int, n_modes: int, min_share: float = MIN_SHARE,
                       min_count: int = MIN_COUNT) -> int:
    """Samples a mode needs to count as covered (see the module docstring)."""
    share = min(min_share, 0.25 / max(n_modes, 1))
    return max(int(min_count), math.ceil(share * n_samples))


def _nearest(samples: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d2 = ((samples[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    idx = d2.argmin(axis=1)
    return idx, np.sqrt(d2[np.arange(len(samples)), idx])


def mode_coverage(samples: np.ndarray, centres: np.ndarray, std: float, *,
                  radius_std: float = RADIUS_STD, min_share: float = MIN_SHARE,
                  min_count: int = MIN_COUNT) -> ModeCoverage:
    """Per-mode sample counts and which modes are covered (see the module docstring)."""
    samples = _as_points(samples, "samples")
    centres = _as_points(centres, "centres")
    counts = np.zeros(len(centres), dtype=np.int64)
    finite = samples[np.all(np.isfinite(samples), axis=1)]
    if len(finite):
        idx, dist = _nearest(finite, centres)
        counts = np.bincount(idx[dist <= radius_std * std], minlength=len(centres))
    threshold = coverage_threshold(len(samples), len(centres), min_share, min_count)
    return ModeCoverage(counts=counts, covered=counts >= threshold, threshold=threshold)


def high_quality_share(samples: np.ndarray, centres: np.ndarray, std: float, *,
                       radius_std: float = RADIUS_STD) -> float:
    """Fraction of samples within ``radius_std * std`` of the nearest centre."""
    samples = _as_points(samples, "samples")
    if len(samples) == 0:
        return 0.0
    finite = np.all(np.isfinite(samples), axis=1)
    if not finite.any():
        return 0.0
    _, dist = _nearest(samples[finite], _as_points(centres, "centres"))
    return float((dist <= radius_std * std).sum() / len(samples))


def _mean_pairwise(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> float:
    """Mean Euclidean distance over all pairs, in row chunks (|a|^2 + |b|^2 - 2 a.b)."""
    b_sq = (b * b).sum(1)
    total = 0.0
    for i in range(0, len(a), chunk):
        block = a[i:i + chunk]
        d2 = (block * block).sum(1)[:, None] + b_sq[None, :] - 2.0 * block @ b.T
        total += np.sqrt(np.maximum(d2, 0.0)).sum()
    return total / (len(a) * len(b))


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Squared energy distance ``2E|X-Y| - E|X-X'| - E|Y-Y'|`` (V-statistic, >= 0).

    Non-finite samples make the distance ``inf`` (a diverged model should never look good).
    """
    x = _as_points(x, "x")
    y = _as_points(y, "y")
    if len(x) == 0 or len(y) == 0:
        raise ValueError("energy_distance needs non-empty sets")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return float("inf")
    value = 2.0 * _mean_pairwise(x, y) - _mean_pairwise(x, x) - _mean_pairwise(y, y)
    return float(max(value, 0.0))


def evaluate(samples: np.ndarray, reference: Dataset2D, **coverage_kwargs) -> Toy2DMetrics:
    """All metrics of ``samples`` against ``reference`` (use a held-out draw of the dataset)."""
    samples = _as_points(samples, "samples")
    ed = energy_distance(samples, reference.points)
    if reference.centres is None or reference.std is None:
        return Toy2DMetrics(None, None, None, ed, len(samples))
    cov = mode_coverage(samples, reference.centres, reference.std, **coverage_kwargs)
    radius = coverage_kwargs.get("radius_std", RADIUS_STD)
    hq = high_quality_share(samples, reference.centres, reference.std, radius_std=radius)
    return Toy2DMetrics(cov.n_covered, cov.n_modes, hq, ed, len(samples))
