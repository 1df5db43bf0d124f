"""Where a denoiser fails: its error per noise level against trivial estimates (issue 28).

:func:`sigma_error_table` calls a denoiser once per noise level on ``clean + sigma * noise``
(one noise tensor drawn from the caller's generator, the same at every level) and reports,
per level, the MSE of its guess of the clean pictures beside two trivial estimates:

* the **mean-colour guess**: each clean picture's own per-channel mean. An oracle (it knows
  the clean picture), and a floor no sane denoiser should lose to at any noise level: its MSE
  is the pictures' variance, the same at every sigma;
* the **best Gaussian blur** of the noisy input: for each picture the width from a fixed set
  (:data:`BLUR_WIDTHS`: 0 = the noisy input itself, up to 64 px and ``inf`` = the noisy
  picture's per-channel mean) whose blur lands closest to the clean picture. Also an oracle
  (the width is picked with the clean picture in hand).

and the **chroma roughness** of the guess (:func:`chroma_roughness`): colour noise left in
("confetti") shows there long before it moves the MSE.

:func:`confetti_share` counts 16x16 blocks whose fine-chroma energy is above a threshold
taken from real photos (:func:`confetti_threshold`, the 99th percentile), so a real photo
scores about 1 %.

Pictures are (N, 3, H, W) in [-1, 1] (model units); noise levels are standard deviations in
the same units (``diffusion_core.units``: sigma 25 on the 0-255 scale is 25 / 127.5). The
numbers are computed in float64; the denoiser gets its input in the pictures' dtype and
device. No streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

#: ITU-R BT.601 luma weights (R, G, B), as everywhere in the repository
LUMA = (0.299, 0.587, 0.114)

#: blur widths (Gaussian standard deviation in pixels) the best-blur oracle picks from:
#: 0 (no blur: the noisy input), 0.5 .. 64 in steps of sqrt(2), and inf (the noisy
#: picture's per-channel mean, the limit of an ever wider blur)
BLUR_WIDTHS: tuple[float, ...] = (0.0,) + tuple(2.0 ** (k / 2) for k in range(-2, 13)) + (math.inf,)

#: side of the blocks confetti is counted in, pixels
CONFETTI_BLOCK = 16

#: the quantile of real photos' block energies that is the confetti threshold
CONFETTI_QUANTILE = 0.99

#: a chroma variance at most this share of the picture's mean square (RGB) counts as none
FLAT_CHROMA = 1e-20

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]


def _batch(x: torch.Tensor) -> torch.Tensor:
    """(3, H, W) or (N, 3, H, W) -> (N, 3, H, W)."""
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected RGB pictures (N, 3, H, W), got shape {tuple(x.shape)}")
    return x


def chroma(x: torch.Tensor) -> torch.Tensor:
    """The (Cb, Cr) channels (N, 2, H, W), float64, of RGB pictures (N, 3, H, W) or (3, H, W).

    BT.601 full range (JPEG's YCbCr): ``Cb = (B - Y) / 1.772``, ``Cr = (R - Y) / 1.402`` with
    ``Y = 0.299 R + 0.587 G + 0.114 B``; the inverse of the one in
    ``diffusion_core.training.data`` (``_colourize``). No offset: gray is chroma 0, and the
    chroma is in the pictures' own units (model units: a span of 2)."""
    x = _batch(x).double()
    wr, wg, wb = LUMA
    y = wr * x[:, 0] + wg * x[:, 1] + wb * x[:, 2]
    cb = (x[:, 2] - y) / (2 * (1 - wb))
    cr = (x[:, 0] - y) / (2 * (1 - wr))
    return torch.stack([cb, cr], 1)


def box_blur3(x: torch.Tensor) -> torch.Tensor:
    """3x3 box blur of (N, C, H, W), each channel on its own, with *reflected* borders
    (``F.pad`` mode "reflect": the row outside the edge is the row next to it, the edge itself
    is not repeated). H and W must be at least 2."""
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)


def fine_chroma(x: torch.Tensor) -> torch.Tensor:
    """The chroma's detail above a 3x3 box blur: ``chroma(x) - box_blur3(chroma(x))``,
    (N, 2, H, W) float64."""
    c = chroma(x)
    return c - box_blur3(c)


def chroma_roughness(x: torch.Tensor) -> torch.Tensor:
    """Per picture (shape (N,), float64): the energy of the chroma above a 3x3 box blur over
    the chroma's variance,

        mean over Cb, Cr and pixels of fine_chroma(x)^2
        / mean over Cb, Cr of the channel's variance (around its own mean, ddof 0).

    Scale-free (any units); 0 for a picture whose chroma is constant (its variance at most
    :data:`FLAT_CHROMA` of the picture's mean square: float rounding), 64/81 for a one-pixel
    checkerboard (the box blur keeps 1/9 of it, borders included), about 8/9 for white chroma
    noise; real photos score about 0.01. Take ``.mean()`` for a set of pictures
    (the bench reports the mean of the per-picture values)."""
    x = _batch(x)
    c = chroma(x)
    energy = (c - box_blur3(c)).pow(2).mean(dim=(1, 2, 3))
    var = c.var(dim=(2, 3), unbiased=False).mean(1)
    # float rounding leaves a constant chroma a variance of ~1e-32 of the picture's square:
    # below FLAT_CHROMA of it the chroma counts as constant, roughness 0
    flat = var <= FLAT_CHROMA * x.double().pow(2).mean(dim=(1, 2, 3))
    return torch.where(flat, 0.0, energy / var.clamp_min(torch.finfo(var.dtype).tiny))


def block_energy(x: torch.Tensor, block: int = CONFETTI_BLOCK) -> torch.Tensor:
    """Fine-chroma energy (mean over Cb, Cr and the block's pixels of ``fine_chroma(x)^2``) of
    every whole ``block`` x ``block`` tile, (N, H // block, W // block) float64; the strips
    at the right and bottom that make no whole block are left out."""
    e = fine_chroma(x).pow(2).mean(1)
    n, h, w = e.shape
    bh, bw = h // block, w // block
    e = e[:, :bh * block, :bw * block].reshape(n, bh, block, bw, block)
    return e.mean(dim=(2, 4))


def confetti_threshold(photos: torch.Tensor | Iterable[torch.Tensor],
                       q: float = CONFETTI_QUANTILE, block: int = CONFETTI_BLOCK) -> float:
    """The ``q`` quantile (default the 99th percentile) of the block energies
    (:func:`block_energy`) of real photos: (N, 3, H, W), or any iterable of (3, H, W) /
    (N, 3, H, W) tensors of differing sizes, in the units the pictures to score will be in.
    With it, :func:`confetti_share` of those photos is about ``1 - q``."""
    if isinstance(photos, torch.Tensor):
        photos = [photos]
    e = torch.cat([block_energy(p, block).flatten() for p in photos])
    if e.numel() == 0:
        raise ValueError(f"no whole {block}x{block} block in the photos")
    return float(torch.quantile(e, q))


def confetti_share(x: torch.Tensor, threshold: float, block: int = CONFETTI_BLOCK) -> torch.Tensor:
    """Per picture (shape (N,), float64): the share of its whole ``block`` x ``block`` tiles
    whose fine-chroma energy (:func:`block_energy`) is above ``threshold``
    (:func:`confetti_threshold`): about 1 % for a real photo, 0 for a smooth one, near 1 for
    a picture covered in colour speckle."""
    e = block_energy(x, block)
    if e[0].numel() == 0:
        raise ValueError(f"pictures of {tuple(x.shape[-2:])} px hold no whole {block}x{block} block")
    return (e > threshold).double().mean(dim=(1, 2))


def _blur_matrix(n: int, width: float, device: torch.device) -> torch.Tensor:
    """(n, n) float64 matrix B with ``B @ v`` = the Gaussian blur (standard deviation ``width``
    px, truncated at 4 widths) of a length-n signal v with reflected borders (as ``F.pad``'s
    "reflect", folded again as often as the kernel needs, so any width works on any n).
    ``width`` 0: the identity; ``inf``: the mean. (A finite width much wider than n tends to
    a mean that weighs the two end samples half, as the reflection repeats the others.)"""
    if width == 0:
        return torch.eye(n, dtype=torch.float64, device=device)
    if math.isinf(width) or n == 1:
        return torch.full((n, n), 1.0 / n, dtype=torch.float64, device=device)
    r = int(math.ceil(4 * width))
    t = torch.arange(-r, r + 1, device=device)
    k = torch.exp(-0.5 * (t.double() / width) ** 2)
    k = k / k.sum()
    pos = torch.arange(n, device=device)[:, None] + t[None, :]  # (n, 2r + 1), may be outside
    period = 2 * (n - 1)
    pos = pos.remainder(period)
    pos = torch.where(pos > n - 1, period - pos, pos)
    b = torch.zeros(n, n, dtype=torch.float64, device=device)
    return b.scatter_add_(1, pos, k.expand(n, -1).contiguous())


def gaussian_blur(x: torch.Tensor, width: float) -> torch.Tensor:
    """Separable Gaussian blur of (..., H, W) with reflected borders, in float64 (see
    :func:`_blur_matrix`; ``width`` 0 returns the input, ``inf`` its per-channel mean)."""
    h, w = x.shape[-2:]
    x = x.double()
    return _blur_matrix(h, width, x.device) @ x @ _blur_matrix(w, width, x.device).T


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per picture MSE over channels and pixels, (N,) float64."""
    return (a.double() - b.double()).pow(2).flatten(1).mean(1)


@dataclass
class SigmaRow:
    """One noise level of :func:`sigma_error_table`. Every ``*_mse`` and ``roughness`` is the
    mean over the pictures (all of one size, so the MSE is also the pooled one); the
    ``*_per_picture`` lists hold each picture's value."""

    sigma: float
    mse: float  # the denoiser's guess against the clean pictures
    mean_colour_mse: float  # each clean picture's own per-channel mean (oracle)
    best_blur_mse: float  # the best Gaussian blur of the noisy input, per picture (oracle)
    noisy_mse: float  # the noisy input itself (sigma^2 up to the noise draw)
    roughness: float  # chroma_roughness of the guess
    confetti: float | None = None  # confetti_share of the guess, when a threshold was given
    best_blur_widths: list[float] = field(default_factory=list)
    mse_per_picture: list[float] = field(default_factory=list)
    roughness_per_picture: list[float] = field(default_factory=list)

    @property
    def beats_mean_colour(self) -> bool:
        """The first acceptance check of issue 28: the guess's MSE is below the mean-colour
        guess's."""
        return self.mse < self.mean_colour_mse

    def smooth_enough(self, clean_roughness: float, factor: float = 3.0) -> bool:
        """The second: the guess's chroma roughness is at most ``factor`` times the clean
        pictures'."""
        return self.roughness <= factor * clean_roughness

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["best_blur_widths"] = [w if math.isfinite(w) else "inf" for w in self.best_blur_widths]
        return d


def sigma_error_table(denoiser: Denoiser, clean: torch.Tensor, sigmas: Sequence[float],
                      generator: torch.Generator, *, widths: Sequence[float] = BLUR_WIDTHS,
                      confetti_threshold: float | None = None) -> list[SigmaRow]:
    """Error per noise level of ``denoiser`` (``denoiser(y, sigma)`` -> the guess of the clean
    pictures, as :class:`diffusion_core.maths.precond.EDMDenoiser` does) on ``clean``
    (N, 3, H, W) in [-1, 1]: one call per sigma, on ``clean + sigma * noise`` with one
    standard normal ``noise`` drawn from ``generator`` (on its device, in float64) and used at
    every sigma, so the levels differ only in sigma. The noisy input is not clipped. The
    denoiser gets it in ``clean``'s dtype and device, under ``torch.no_grad``.

    Returns one :class:`SigmaRow` per sigma, in the order given. ``widths``: the blur widths
    the best-blur oracle picks from, per picture (include 0 so it is never worse than the
    noisy input). ``confetti_threshold``: also report :func:`confetti_share` of the guesses.
    """
    clean = _batch(clean)
    if not widths:
        raise ValueError("widths is empty")
    c64 = clean.double()
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float64,
                        device=generator.device).to(clean.device)
    mean_colour = _mse(c64.mean(dim=(2, 3), keepdim=True).expand_as(c64), c64)
    rows = []
    for sigma in sigmas:
        sigma = float(sigma)
        y64 = c64 + sigma * noise
        with torch.no_grad():
            guess = denoiser(y64.to(clean.dtype), sigma)
        if guess.shape != clean.shape:
            raise ValueError(f"the denoiser returned {tuple(guess.shape)} for {tuple(clean.shape)}")
        blur = torch.stack([_mse(gaussian_blur(y64, w), c64) for w in widths])  # (widths, N)
        best, which = blur.min(0)
        mse = _mse(guess, c64)
        rough = chroma_roughness(guess)
        rows.append(SigmaRow(
            sigma=sigma, mse=float(mse.mean()), mean_colour_mse=float(mean_colour.mean()),
            best_blur_mse=float(best.mean()), noisy_mse=float(_mse(y64, c64).mean()),
            roughness=float(rough.mean()),
            confetti=(None if confetti_threshold is None
                      else float(confetti_share(guess, confetti_threshold).mean())),
            best_blur_widths=[float(widths[i]) for i in which.tolist()],
            mse_per_picture=mse.tolist(), roughness_per_picture=rough.tolist()))
    return rows
