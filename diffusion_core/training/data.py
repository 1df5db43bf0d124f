"""Training data that needs no download.

Sources
-------
* ``deadleaves``: synthetic "dead leaves" images generated here: occluding discs and
  rectangles whose sizes follow a power law (the scale invariance of natural images), with
  flat colours, smooth gradients, striped textures and a little blur.
* ``bundled``: the photos shipped inside scikit-image and scikit-learn wheels.
* ``train400``: ``../shared/data/train/Train400`` (400 gray photos) when present; half of its
  patches are given a random chroma so the colour model sees more colour structure: a smooth
  field, or (a share ``p_edge_chroma``) one colour per region of similar brightness, so that
  colour edges sit on brightness edges as they do in photos.
* ``imagenet1000``, ``cbsd432``: ``../shared/data/train/ImageNet1000`` (974 varied colour
  photos) and ``../shared/data/train/CBSD432`` when present. Research and education only.
* ``folder:PATH``: any folder of the user's images. When the upload recorded classes for
  them (a zip with one folder per class, :func:`~diffusion_core.media.uploads.read_classes`),
  the folder becomes one source per class, whose batches carry the class label
  (:func:`folder_classes`; pictures without a class get -1, "no label").

Patches are random crops with flips and 90-degree rotations. A share of patches is made
gray (all three channels equal), in which case the training noise is gray too, so the
colour model also denoises gray images (replicated to RGB).

Every batch is a pure function of (seed, rank, step): resuming needs no RNG state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from diffusion_core.media.photos import bundled_photo_paths, dead_leaves, read_rgb_uint8
from diffusion_core.media.uploads import read_classes
from diffusion_core.system.paths import SHARED_DATA_DIR
from diffusion_core.units import IMAGE_EXTS


def default_train400() -> Path:
    return SHARED_DATA_DIR / "train" / "Train400"


SHARED_PHOTO_SETS = {"imagenet1000": "ImageNet1000", "cbsd432": "CBSD432"}


def folder_paths(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTS)


def folder_classes(folder: Path) -> tuple[list[str], dict[Path, int]]:
    """The class names of a folder's pictures (sorted) and each picture's label index (-1
    for a picture without a class); ([], all -1) when the upload recorded no classes."""
    paths = folder_paths(Path(folder))
    recorded = read_classes(folder)
    names = sorted({recorded[p.name] for p in paths if p.name in recorded})
    index = {n: i for i, n in enumerate(names)}
    return names, {p: index.get(recorded.get(p.name, ""), -1) for p in paths}


# --------------------------------------------------------------------------- the pool


@dataclass
class Source:
    name: str
    images: list  # list of HxWx3 uint8 arrays
    weight: float
    colourize: float = 0.0  # probability to add smooth random chroma (for gray sources)
    label: int = -1  # the class of every picture here (-1: none)


def _rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True).expand(-1, 3, -1, -1)


def _smooth_chroma(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """(n, 2, size, size) smooth random Cb/Cr fields."""
    low = torch.randn(n, 2, 4, 4, generator=g) * 0.05
    low = low + torch.randn(n, 2, 1, 1, generator=g) * 0.06
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (n, c, H, W) with reflected borders."""
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _edge_chroma(y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """(1, 2, H, W) random Cb/Cr for a gray crop y (1, 1, H, W) whose colour edges sit on
    its brightness edges, as an object's colour ends where the object does.

    The crop's brightness, smoothed so that fine texture keeps one colour, is cut into 2-6
    bands at random quantiles; each connected region of a band is one "object" and gets one
    colour: its band's colour plus a smaller colour of its own. A slight blur (a camera's
    demosaicing) and a smooth field go on top.
    """
    from scipy import ndimage

    H, W = y.shape[-2:]
    ys = _blur(y, float(torch.empty(1).uniform_(1.5, 3.0, generator=g)))[0, 0]
    k = int(torch.randint(2, 7, (1,), generator=g))
    q = torch.sort(torch.rand(k - 1, generator=g)).values
    bands = torch.bucketize(ys.flatten(), torch.quantile(ys.flatten(), q)).view(H, W).numpy()
    regions = np.zeros((H, W), np.int64)
    n = 0
    for b in range(k):
        lab, m = ndimage.label(bands == b)
        inside = lab > 0
        regions[inside] = lab[inside] + n
        n += m
    spread = float(torch.empty(1).uniform_(0.01, 0.08, generator=g))
    band_colour = torch.randn(k, 2, generator=g) * spread
    own = torch.randn(n + 1, 2, generator=g) * spread * float(torch.rand(1, generator=g)) * 0.5
    region_band = np.zeros(n + 1, np.int64)
    region_band[regions.flatten()] = bands.flatten()
    colour = band_colour[torch.from_numpy(region_band)] + own
    chroma = colour[torch.from_numpy(regions)].permute(2, 0, 1)[None]
    chroma = _blur(chroma, float(torch.empty(1).uniform_(0.5, 1.5, generator=g)))
    return chroma + 0.5 * _smooth_chroma(1, H, g)


def _colourize(y: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """y: (n,1,H,W) luma in [0,1]; chroma (n,2,H,W) -> RGB in [0,1]."""
    cb, cr = chroma[:, :1], chroma[:, 1:]
    r = y + 1.402 * cr
    gch = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return torch.cat([r, gch, b], 1).clamp(0, 1)


def _non_empty(sources: list[Source]) -> tuple[list[Source], torch.Tensor]:
    """The sources that hold pictures and their drawing probabilities (weights normalised)."""
    kept = [s for s in sources if s.images]
    if not kept:
        raise ValueError("No training images found in the requested data sources.")
    w = torch.tensor([s.weight for s in kept], dtype=torch.float64)
    return kept, w / w.sum()


class PatchSampler:
    """Draws training batches (N, 3, P, P) in [-1, 1] and a per-sample 'gray' flag, and
    when any source has a class, a third item: each sample's label (N,) (-1: none)."""

    def __init__(self, sources: list[Source], patch: int, p_gray: float = 0.15,
                 p_edge_chroma: float = 0.0):
        self.sources, self.probs = _non_empty(sources)
        self.patch = patch
        self.p_gray = p_gray
        self.p_edge_chroma = p_edge_chroma  # share of colourized crops given _edge_chroma
        self.labelled = any(s.label >= 0 for s in self.sources)

    def describe(self) -> dict:
        return {s.name: len(s.images) for s in self.sources}

    def batch(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
        P = self.patch
        src_idx = torch.multinomial(self.probs, n, replacement=True, generator=g)
        out = torch.empty(n, 3, P, P)
        gray = torch.zeros(n, dtype=torch.bool)
        for i in range(n):
            src = self.sources[int(src_idx[i])]
            img = src.images[int(torch.randint(len(src.images), (1,), generator=g))]
            h, w = img.shape[:2]
            if h < P or w < P:
                t = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255.0
                scale = P / min(h, w)
                t = F.interpolate(t, scale_factor=scale * 1.01, mode="bilinear",
                                  align_corners=False)[0]
                h, w = t.shape[1:]
            else:
                t = None
            y0 = int(torch.randint(h - P + 1, (1,), generator=g))
            x0 = int(torch.randint(w - P + 1, (1,), generator=g))
            if t is None:
                crop = torch.from_numpy(img[y0:y0 + P, x0:x0 + P]).permute(2, 0, 1).float() / 255.0
            else:
                crop = t[:, y0:y0 + P, x0:x0 + P]
            k = int(torch.randint(4, (1,), generator=g))
            crop = torch.rot90(crop, k, dims=(1, 2))
            if torch.rand(1, generator=g) < 0.5:
                crop = crop.flip(2)
            is_gray = bool((crop[0] == crop[1]).all() and (crop[1] == crop[2]).all())
            if is_gray and src.colourize > 0 and torch.rand(1, generator=g) < src.colourize:
                if self.p_edge_chroma > 0 and torch.rand(1, generator=g) < self.p_edge_chroma:
                    chroma = _edge_chroma(crop[:1][None], g)
                else:
                    chroma = _smooth_chroma(1, P, g)
                crop = _colourize(crop[:1][None], chroma)[0]
                is_gray = False
            elif not is_gray and torch.rand(1, generator=g) < self.p_gray:
                crop = _rgb_to_gray(crop[None])[0]
                is_gray = True
            out[i] = crop
            gray[i] = is_gray
        if self.labelled:
            labels = torch.tensor([self.sources[int(k)].label for k in src_idx], dtype=torch.long)
            return out * 2.0 - 1.0, gray, labels
        return out * 2.0 - 1.0, gray


def build_sources(spec: list[str], seed: int = 0, n_deadleaves: int = 200,
                  deadleaves_size: int = 192, log=print) -> list[Source]:
    """Build training sources from names: 'deadleaves', 'bundled', 'train400',
    'folder:PATH'. A weight can follow after '@', e.g. 'train400@0.45'."""
    sources: list[Source] = []
    for item in spec:
        name, _, weight = item.partition("@")
        wt = float(weight) if weight else 1.0
        if name == "deadleaves":
            rng = np.random.default_rng(seed + 12345)
            imgs = [dead_leaves(deadleaves_size, rng) for _ in range(n_deadleaves)]
            sources.append(Source("deadleaves", imgs, wt))
        elif name == "bundled":
            imgs = [read_rgb_uint8(p) for p in bundled_photo_paths()]
            sources.append(Source("bundled", imgs, wt))
        elif name == "train400":
            d = default_train400()
            paths = folder_paths(d) if d.exists() else []
            if not paths:
                log(f"train400 not found at {d}; skipped")
            imgs = [read_rgb_uint8(p) for p in paths]
            sources.append(Source("train400", imgs, wt, colourize=0.5))
        elif name in SHARED_PHOTO_SETS:
            d = SHARED_DATA_DIR / "train" / SHARED_PHOTO_SETS[name]
            paths = folder_paths(d) if d.exists() else []
            if not paths:
                log(f"{name} not found at {d}; skipped")
            sources.append(Source(name, [read_rgb_uint8(p) for p in paths], wt))
        elif name.startswith("folder:"):
            classes, labels = folder_classes(Path(name[len("folder:"):]))
            for k in range(-1, len(classes)):  # one source per class (and one without)
                imgs = [read_rgb_uint8(p) for p, lab in labels.items() if lab == k]
                if imgs or (k == -1 and not classes):
                    share = wt * len(imgs) / max(1, len(labels))
                    sources.append(Source(name if k < 0 else f"{name} [{classes[k]}]", imgs,
                                          share if classes else wt, colourize=0.5, label=k))
        else:
            raise ValueError(f"Unknown data source {name!r}")
    return sources


class WholePictureSampler:
    """Training batches of whole photos shrunk to about ``size`` pixels, for the network that
    guesses a photo's overall layout and colours at heavy noise (``kind = "overview"``).

    Each picture is shrunk (area averaging, as the overview denoiser's k x k average pooling
    does) so that its shorter side is a random length from ``size`` to ``size * max_zoom``,
    and a random ``size`` x ``size`` crop of it is taken: most of the picture, never turned
    (skies stay on top), mirrored left-right half the time. A share ``p_gray`` is made gray
    (with gray training noise, as in :class:`PatchSampler`). Same contract as
    :meth:`PatchSampler.batch`: (x0 in [-1, 1], gray flags)."""

    def __init__(self, sources: list[Source], size: int, p_gray: float = 0.1,
                 max_zoom: float = 1.5, keep: int = 160):
        self.sources, self.probs = _non_empty(sources)
        self.size, self.p_gray, self.max_zoom = int(size), float(p_gray), float(max_zoom)
        # Shrink once, to a shorter side of ``keep`` px, so a batch only shrinks small copies.
        self.pictures = [[_shrink_uint8(img, max(keep, int(size * max_zoom) + 1))
                          for img in s.images] for s in self.sources]

    def describe(self) -> dict:
        return {s.name: len(s.images) for s in self.sources}

    def batch(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        S = self.size
        src_idx = torch.multinomial(self.probs, n, replacement=True, generator=g)
        out = torch.empty(n, 3, S, S)
        gray = torch.zeros(n, dtype=torch.bool)
        for i in range(n):
            pics = self.pictures[int(src_idx[i])]
            t = pics[int(torch.randint(len(pics), (1,), generator=g))]
            h, w = t.shape[-2:]
            short = S * (1.0 + (self.max_zoom - 1.0) * float(torch.rand(1, generator=g)))
            scale = short / min(h, w)
            size = (max(S, round(h * scale)), max(S, round(w * scale)))
            t = F.interpolate(t[None].float() / 255.0, size=size, mode="area")[0]
            y0 = int(torch.randint(size[0] - S + 1, (1,), generator=g))
            x0 = int(torch.randint(size[1] - S + 1, (1,), generator=g))
            crop = t[:, y0:y0 + S, x0:x0 + S]
            if torch.rand(1, generator=g) < 0.5:
                crop = crop.flip(2)
            if torch.rand(1, generator=g) < self.p_gray:
                crop = _rgb_to_gray(crop[None])[0]
                gray[i] = True
            out[i] = crop
        return out * 2.0 - 1.0, gray


def _shrink_uint8(img: np.ndarray, short: int) -> torch.Tensor:
    """(3, h, w) uint8 copy of an HxWx3 picture whose shorter side is at most ``short``."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
    h, w = t.shape[-2:]
    if min(h, w) <= short:
        return t.contiguous()
    size = (max(1, round(h * short / min(h, w))), max(1, round(w * short / min(h, w))))
    small = F.interpolate(t[None].float(), size=size, mode="area")[0]
    return small.round().clamp(0, 255).to(torch.uint8)
