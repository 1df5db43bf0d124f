"""Two-dimensional toy datasets for the "Why diffusion?" playground.

Every generator takes an explicit ``numpy.random.Generator``; nothing here touches global
random state. Mode-based datasets (the ring, the grid and user-drawn points) are mixtures of
isotropic Gaussians and expose their mode centres and the shared standard deviation, so that
:mod:`diffusion_core.toy2d.metrics` can count covered modes. The other datasets (moons, swiss
roll, checkerboard) have no discrete modes; their ``centres`` is ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DATASETS",
    "DRAWN_MAX_POINTS",
    "DRAWN_LIMIT",
    "Dataset2D",
    "grid_centres",
    "make_dataset",
    "make_drawn_dataset",
    "parse_points",
    "ring_centres",
]

#: Dataset names accepted by :func:`make_dataset`, with a human-readable label.
DATASETS: dict[str, str] = {
    "ring": "Ring of 8 Gaussians",
    "grid": "5 x 5 grid of Gaussians",
    "moons": "Two moons",
    "swiss_roll": "Swiss roll",
    "checkerboard": "Checkerboard",
    "drawn": "Your own points",
}

RING_RADIUS = 2.0
RING_MODES = 8
RING_STD = 0.05
GRID_SIDE = 5
GRID_SPACING = 1.0
GRID_STD = 0.05
MOONS_NOISE = 0.05
SWISS_NOISE = 0.05
CHECKER_CELLS = 4
CHECKER_EXTENT = 2.0
#: Largest number of user-drawn centres accepted.
DRAWN_MAX_POINTS = 50
#: User-drawn centres must lie within ``[-DRAWN_LIMIT, DRAWN_LIMIT]`` on both axes.
DRAWN_LIMIT = 5.0
DRAWN_DEFAULT_STD = 0.1
MAX_POINTS = 1_000_000


@dataclass(frozen=True)
class Dataset2D:
    """A 2-D point cloud.

    Attributes:
        points: ``(n, 2)`` float64 array.
        centres: ``(k, 2)`` array of mode centres for Gaussian-mixture datasets, else ``None``.
        std: per-axis standard deviation of every mode (mixtures) or of the additive noise
            (moons, swiss roll); ``None`` for the checkerboard, which has no noise scale.
        name: the dataset key (see :data:`DATASETS`).
    """

    points: np.ndarray
    centres: np.ndarray | None
    std: float | None
    name: str = ""

    @property
    def n_modes(self) -> int | None:
        return None if self.centres is None else int(len(self.centres))

    @property
    def label(self) -> str:
        return DATASETS.get(self.name, self.name)


def ring_centres(n_modes: int = RING_MODES, radius: float = RING_RADIUS) -> np.ndarray:
    """Centres of ``n_modes`` Gaussians evenly spaced on a circle, the first on the +x axis."""
    angles = 2.0 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_centres(side: int = GRID_SIDE, spacing: float = GRID_SPACING) -> np.ndarray:
    """Centres of a ``side x side`` grid centred on the origin, row-major from bottom-left."""
    coords = (np.arange(side) - (side - 1) / 2.0) * spacing
    xs, ys = np.meshgrid(coords, coords)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def _mixture(centres: np.ndarray, std: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points from an equal-weight isotropic Gaussian mixture."""
    which = rng.integers(0, len(centres), size=n)
    return centres[which] + std * rng.standard_normal((n, 2))


def _moons(n: int, rng: np.random.Generator) -> np.ndarray:
    n_upper = n // 2
    n_lower = n - n_upper
    t_up = rng.uniform(0.0, np.pi, n_upper)
    t_lo = rng.uniform(0.0, np.pi, n_lower)
    upper = np.stack([np.cos(t_up), np.sin(t_up)], axis=1)
    lower = np.stack([1.0 - np.cos(t_lo), 0.5 - np.sin(t_lo)], axis=1)
    pts = np.concatenate([upper, lower])[rng.permutation(n)]
    # Centre on the origin and stretch to roughly [-2.3, 2.3] x [-1.2, 1.5].
    pts = (pts - np.array([0.5, 0.25])) * 1.5
    return pts + MOONS_NOISE * rng.standard_normal((n, 2))


def _swiss_roll(n: int, rng: np.random.Generator) -> np.ndarray:
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(0.0, 1.0, n))
    pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5.0
    return pts + SWISS_NOISE * rng.standard_normal((n, 2))


def _checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    cell = 2.0 * CHECKER_EXTENT / CHECKER_CELLS
    ij = np.array(
        [(i, j) for i in range(CHECKER_CELLS) for j in range(CHECKER_CELLS) if (i + j) % 2 == 0],
        dtype=float,
    )
    which = rng.integers(0, len(ij), size=n)
    offsets = rng.uniform(0.0, cell, size=(n, 2))
    return -CHECKER_EXTENT + ij[which] * cell + offsets


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    if not 1 <= n <= MAX_POINTS:
        raise ValueError(f"n must be between 1 and {MAX_POINTS}, got {n}")
    return int(n)


def make_drawn_dataset(
    points: np.ndarray | list,
    n: int,
    rng: np.random.Generator,
    std: float = DRAWN_DEFAULT_STD,
) -> Dataset2D:
    """Make a dataset from user-clicked points by jittering ``n`` samples around them.

    Each clicked point becomes one Gaussian mode (equal weights, per-axis std ``std``), so the
    mode metrics work on drawn data too. Duplicate clicks are merged.

    Raises:
        ValueError: no points, more than :data:`DRAWN_MAX_POINTS`, non-finite values, points
            outside ``[-DRAWN_LIMIT, DRAWN_LIMIT]``, or a non-positive ``std``.
    """
    n = _check_n(n)
    arr = np.asarray(points, dtype=float)
    if arr.size == 0:
        raise ValueError("Add at least one point to draw a dataset.")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"Points must be an array of (x, y) pairs, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("Points must be finite numbers.")
    if np.any(np.abs(arr) > DRAWN_LIMIT):
        raise ValueError(f"Points must lie within [-{DRAWN_LIMIT:g}, {DRAWN_LIMIT:g}] on both axes.")
    if not (np.isfinite(std) and std > 0):
        raise ValueError(f"std must be a positive number, got {std}.")
    centres = np.unique(np.round(arr, 6), axis=0)
    if len(centres) > DRAWN_MAX_POINTS:
        raise ValueError(f"At most {DRAWN_MAX_POINTS} points can be drawn, got {len(centres)}.")
    return Dataset2D(_mixture(centres, std, n, rng), centres, float(std), "drawn")


def parse_points(text: str) -> np.ndarray:
    """Parse typed points, one ``x, y`` per line (spaces or semicolons also separate).

    Blank lines and lines starting with ``#`` are skipped. Returns a ``(k, 2)`` array.

    Raises:
        ValueError: naming the first line that is not two numbers.
    """
    rows = []
    for i, raw in enumerate(str(text).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in line.replace(";", ",").replace(" ", ",").split(",") if p]
        if len(parts) != 2:
            raise ValueError(f"Line {i}: write one point per line as 'x, y' (got {line!r}).")
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise ValueError(f"Line {i}: {line!r} is not two numbers.") from None
    return np.array(rows, dtype=float).reshape(-1, 2)


def make_dataset(name: str, n: int, rng: np.random.Generator, **kwargs) -> Dataset2D:
    """Draw ``n`` points of the named dataset with the given numpy generator.

    ``name`` is one of :data:`DATASETS`. For ``"drawn"`` pass ``points=`` (and optionally
    ``std=``); see :func:`make_drawn_dataset`. Same generator state, same points.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    if name == "drawn":
        if "points" not in kwargs:
            raise ValueError("The 'drawn' dataset needs points=[(x, y), ...].")
        return make_drawn_dataset(kwargs["points"], n, rng, kwargs.get("std", DRAWN_DEFAULT_STD))
    if kwargs:
        raise TypeError(f"Unexpected arguments for dataset {name!r}: {sorted(kwargs)}")
    n = _check_n(n)
    if name == "ring":
        centres = ring_centres()
        return Dataset2D(_mixture(centres, RING_STD, n, rng), centres, RING_STD, name)
    if name == "grid":
        centres = grid_centres()
        return Dataset2D(_mixture(centres, GRID_STD, n, rng), centres, GRID_STD, name)
    if name == "moons":
        return Dataset2D(_moons(n, rng), None, MOONS_NOISE, name)
    if name == "swiss_roll":
        return Dataset2D(_swiss_roll(n, rng), None, SWISS_NOISE, name)
    if name == "checkerboard":
        return Dataset2D(_checkerboard(n, rng), None, None, name)
    raise ValueError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
