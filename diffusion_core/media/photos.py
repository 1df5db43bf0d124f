"""Pictures that need no download: the photos bundled inside the scikit-image and scikit-learn
wheels, and synthetic "dead leaves" images (occluding shapes with power-law sizes, the scale
invariance of natural images). Used for training data, calibration of the 8-bit path and
previews."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SKIMAGE_PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg",
    "ihc.png", "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "camera.png",
    "moon.png", "brick.png", "grass.png", "gravel.png", "coins.png",
)
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


def bundled_photo_paths() -> list[Path]:
    """Photos shipped inside installed packages (no network needed)."""
    paths: list[Path] = []
    try:
        import skimage

        d = Path(skimage.__file__).parent / "data"
        paths += [d / n for n in SKIMAGE_PHOTOS if (d / n).exists()]
    except ImportError:  # pragma: no cover
        pass
    try:
        import sklearn

        d = Path(sklearn.__file__).parent / "datasets" / "images"
        paths += [d / n for n in SKLEARN_PHOTOS if (d / n).exists()]
    except ImportError:  # pragma: no cover
        pass
    return paths


def read_rgb_uint8(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        return np.asarray(im, dtype=np.uint8).copy()




def dead_leaves(size: int, rng: np.random.Generator, r_min: float = 1.5,
                r_max: float = None, alpha: float = 3.0, n_shapes: int = 1200) -> np.ndarray:
    """One dead-leaves image (size x size x 3, uint8).

    Shape radii follow p(r) ~ r^-alpha on [r_min, r_max] (alpha = 3 gives the 1/f^2 power
    spectrum of natural images). Shapes are painted back to front, each occluding the
    ones before it; each has a flat colour, a linear gradient or a striped texture."""
    r_max = r_max or size / 2
    img = np.zeros((size, size, 3), dtype=np.float32)
    img[:] = rng.uniform(0, 1, size=3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # inverse-CDF sampling of the power law
    u = rng.uniform(size=n_shapes)
    a1 = 1.0 - alpha
    radii = (r_min**a1 + u * (r_max**a1 - r_min**a1)) ** (1.0 / a1)
    radii = np.sort(radii)[::-1]  # big ones first, small ones on top
    for r in radii:
        cx, cy = rng.uniform(-r, size + r, size=2)
        x0, x1 = int(max(0, cx - r - 1)), int(min(size, cx + r + 2))
        y0, y1 = int(max(0, cy - r - 1)), int(min(size, cy + r + 2))
        if x1 <= x0 or y1 <= y0:
            continue
        sx, sy = xx[y0:y1, x0:x1], yy[y0:y1, x0:x1]
        kind = rng.uniform()
        if kind < 0.7:
            mask = (sx - cx) ** 2 + (sy - cy) ** 2 <= r * r
        else:
            ang = rng.uniform(0, math.pi)
            ca, sa = math.cos(ang), math.sin(ang)
            u_ = (sx - cx) * ca + (sy - cy) * sa
            v_ = -(sx - cx) * sa + (sy - cy) * ca
            mask = (np.abs(u_) <= r) & (np.abs(v_) <= r * rng.uniform(0.3, 1.0))
        if not mask.any():
            continue
        base = rng.uniform(0, 1, size=3).astype(np.float32)
        if rng.uniform() < 0.3:  # near-gray shapes are common in nature
            base[:] = base.mean()
        tex = rng.uniform()
        if tex < 0.5:
            patch = np.broadcast_to(base, mask.shape + (3,))
        elif tex < 0.8:
            g = rng.normal(0, 0.5 / max(r, 1.0), size=2)
            ramp = (sx - cx) * g[0] + (sy - cy) * g[1]
            patch = base[None, None, :] + ramp[..., None] * rng.uniform(0.3, 1.0, size=3)
        else:
            freq = rng.uniform(0.1, 1.2)
            ang = rng.uniform(0, math.pi)
            wave = np.sin(((sx * math.cos(ang) + sy * math.sin(ang)) * freq))
            amp = rng.uniform(0.05, 0.25)
            patch = base[None, None, :] + amp * wave[..., None]
        region = img[y0:y1, x0:x1]
        region[mask] = patch[mask]
    img = np.clip(img, 0, 1)
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    if rng.uniform() < 0.7:  # slight optical blur
        s = rng.uniform(0.3, 1.2)
        k = torch.arange(-3, 4, dtype=torch.float32)
        k = torch.exp(-(k**2) / (2 * s * s))
        k = k / k.sum()
        t = F.conv2d(F.pad(t, (3, 3, 0, 0), mode="reflect"), k.view(1, 1, 1, 7).repeat(3, 1, 1, 1),
                     groups=3)
        t = F.conv2d(F.pad(t, (0, 0, 3, 3), mode="reflect"), k.view(1, 1, 7, 1).repeat(3, 1, 1, 1),
                     groups=3)
    out = (t[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    return out
