"""One photo denoiser from two networks: a whole-picture overview at low resolution for heavy
noise, and the patch ("detail") network for light noise.

At heavy noise the best guess of a photo keeps only its coarse layout and colours: fine
detail is gone under the noise. Shrinking the noisy picture by an integer factor ``k``
(k x k average pooling) keeps exactly that coarse content while dividing the noise level by
``k`` (the mean of k^2 independent draws), so a network that has seen whole photos at about
``size`` pixels (``k = round(shorter side / size)``) can guess it from the whole picture at
once, which a patch network cannot (cascaded diffusion, Ho et al. 2021; how noise and
resolution trade, Hoogeboom et al. 2023).

The two guesses are mixed per noise level:

    coarse(v)  = U(P_k v)                              (P_k: k x k mean, U: bilinear back)
    o = U(O(P_k y, sigma / k))
    D(y, sigma) = coarse(d) + a * luma(o - coarse(d)) + a_chroma * chroma(o - coarse(d))
                + b_luma * luma(d - coarse(d)) + b_chroma * chroma(d - coarse(d))

with ``d = detail(y, sigma)``, ``O`` the overview network, and the colour split in BT.601
YCbCr (``luma``: the part that only changes brightness; ``chroma`` the rest): the overview's
shares of the coarse brightness and colour, and the detail network's shares of its own fine
brightness and colour. The weights are a table over log(sigma), interpolated linearly in
between and held at the ends; they were fitted by least squares on training photos
(:func:`fit_mix_weights`). Where both ``a`` are 0 and both ``b`` 1 the overview is not
called, and where both ``a`` are 1 and both ``b`` 0 the detail network is not called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from diffusion_core.models.nets import pad_to_multiple

# BT.601 luma weights: luma(v) keeps, per pixel, the gray part (Y, Y, Y) of v
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class MixTable:
    """The mixing weights per noise level: ``log_sigma`` increasing, and for each level the
    overview's share ``a`` of the coarse brightness (and ``a_chroma`` of the coarse colour;
    None: the same as ``a``), and the detail network's shares of its own fine brightness
    (``b_luma``) and fine colour (``b_chroma``)."""

    log_sigma: tuple[float, ...]
    a: tuple[float, ...]
    b_luma: tuple[float, ...]
    b_chroma: tuple[float, ...]
    a_chroma: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.a_chroma is None:
            object.__setattr__(self, "a_chroma", tuple(self.a))
        n = len(self.log_sigma)
        if n < 1 or any(len(v) != n for v in (self.a, self.b_luma, self.b_chroma,
                                               self.a_chroma)):
            raise ValueError("a mix table needs the same number of entries in every column")
        if any(b <= a for a, b in zip(self.log_sigma, self.log_sigma[1:])):
            raise ValueError("a mix table's noise levels must increase")

    @classmethod
    def from_dict(cls, d: dict) -> "MixTable":
        cols = [tuple(float(v) for v in d[k]) for k in ("log_sigma", "a", "b_luma", "b_chroma")]
        a_chroma = d.get("a_chroma")
        return cls(*cols, tuple(float(v) for v in a_chroma) if a_chroma is not None else None)

    def to_dict(self) -> dict:
        return {"log_sigma": list(self.log_sigma), "a": list(self.a),
                "a_chroma": list(self.a_chroma), "b_luma": list(self.b_luma),
                "b_chroma": list(self.b_chroma)}

    def at(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(a, b_luma, b_chroma, a_chroma) at each sigma (float64, same shape as sigma)."""
        ls = torch.log(sigma.double().clamp_min(1e-12))
        xs = torch.tensor(self.log_sigma, dtype=torch.float64)
        out = []
        for col in (self.a, self.b_luma, self.b_chroma, self.a_chroma):
            ys = torch.tensor(col, dtype=torch.float64)
            out.append(_interp(ls, xs, ys))
        return tuple(out)


def _interp(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation, held constant beyond the ends."""
    if xs.numel() == 1:
        return ys.expand_as(x).clone()
    xc = x.clamp(float(xs[0]), float(xs[-1]))
    i = torch.searchsorted(xs, xc, right=True).clamp(1, xs.numel() - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    t = (xc - x0) / (x1 - x0)
    return y0 + t * (y1 - y0)


def overview_factor(h: int, w: int, size: int) -> int:
    """The integer shrink factor that brings the shorter side nearest to ``size`` (at least 1;
    halves round up)."""
    return max(1, int(math.floor(min(h, w) / size + 0.5)))


def shrink(v: torch.Tensor, k: int) -> torch.Tensor:
    """k x k means of (N, C, H, W), the picture first padded (reflected, or replicated when it
    is too small) at the bottom and right to multiples of k."""
    if k == 1:
        return v
    return F.avg_pool2d(pad_to_multiple(v, k), k)


def grow(v: torch.Tensor, k: int, h: int, w: int) -> torch.Tensor:
    """Bilinear enlargement by k of a shrunk picture, cropped to h x w."""
    if k == 1:
        return v[..., :h, :w]
    big = F.interpolate(v, scale_factor=k, mode="bilinear", align_corners=False)
    return big[..., :h, :w]


def coarse(v: torch.Tensor, k: int) -> torch.Tensor:
    """``U(P_k v)``: what a k-times shrunk copy of v keeps, at full size."""
    return grow(shrink(v, k), k, *v.shape[-2:])


def luma_part(v: torch.Tensor) -> torch.Tensor:
    """The brightness-only part of an RGB difference v: (Y, Y, Y) with BT.601 Y; a gray
    (1-channel) v is all brightness."""
    if v.shape[1] != 3:
        return v
    w = torch.tensor(_LUMA, dtype=v.dtype, device=v.device).view(1, 3, 1, 1)
    return (v * w).sum(1, keepdim=True).expand_as(v)


class CascadeDenoiser(nn.Module):
    """``D(y, sigma)`` from a detail (patch) denoiser and an overview denoiser, mixed by a
    :class:`MixTable` (see the module's docstring). Both are ``Denoiser``s in the same units;
    ``size`` is the shorter side the overview network was trained at."""

    def __init__(self, detail: nn.Module, overview: nn.Module, table: MixTable,
                 size: int = 64):
        super().__init__()
        self.detail = detail
        self.overview = overview
        self.table = table
        self.size = int(size)
        self.calls = {"detail": 0, "overview": 0}  # network calls, for tests and benches

    # --- what the rest of the library asks a denoiser -------------------------------------
    @property
    def channels(self) -> int:
        return int(getattr(self.detail, "channels", 3))

    @property
    def sigma_data(self) -> float:
        return float(getattr(self.detail, "sigma_data", 0.5))

    @property
    def num_classes(self) -> int:
        return 0

    @property
    def net(self) -> nn.Module:
        """The detail network (what the 8-bit path quantizes)."""
        return self.detail.net

    def use_channels_last(self, enable: bool = True) -> "CascadeDenoiser":
        for d in (self.detail, self.overview):
            if hasattr(d, "use_channels_last"):
                d.use_channels_last(enable)
        return self

    def use_cpu_bf16(self, enable: bool = True) -> "CascadeDenoiser":
        for d in (self.detail, self.overview):
            if hasattr(d, "use_cpu_bf16"):
                d.use_cpu_bf16(enable)
        return self

    def with_detail(self, detail) -> "CascadeDenoiser":
        """The same cascade around another detail denoiser (e.g. its 8-bit version)."""
        out = CascadeDenoiser(detail, self.overview, self.table, self.size)
        out.info = getattr(self, "info", None)
        return out

    # --- the guess ------------------------------------------------------------------------
    def forward(self, y: torch.Tensor, sigma) -> torch.Tensor:
        n, _, h, w = y.shape
        s = torch.as_tensor(sigma, dtype=torch.float32, device=y.device).reshape(-1)
        if s.numel() == 1:
            s = s.expand(n)
        a, bl, bc, ac = (v.to(torch.float32).to(y.device) for v in self.table.at(s.cpu()))
        need_overview = bool(((a > 0) | (ac > 0)).any())
        need_detail = bool(((a < 1) | (ac < 1) | (bl > 0) | (bc > 0)).any())
        if not need_overview and bool(((bl == 1) & (bc == 1)).all()):
            self.calls["detail"] += 1
            return self.detail(y, s)
        k = overview_factor(h, w, self.size)
        col = (lambda t: t.view(-1, 1, 1, 1))
        d_coarse = torch.zeros_like(y, dtype=torch.float32)
        out = d_coarse
        if need_detail:
            self.calls["detail"] += 1
            d = self.detail(y, s).float()
            d_coarse = coarse(d, k)
            fine = d - d_coarse
            fine_luma = luma_part(fine)
            out = d_coarse + col(bl) * fine_luma + col(bc) * (fine - fine_luma)
        if need_overview:
            self.calls["overview"] += 1
            o = grow(self.overview(shrink(y.float(), k), s / k).float(), k, h, w)
            step = o - d_coarse
            step_luma = luma_part(step)
            out = out + col(a) * step_luma + col(ac) * (step - step_luma)
        return out.to(y.dtype)


# ------------------------------------------------------------------------------- fitting


def mix_features(detail_guess: torch.Tensor, overview_guess: torch.Tensor, k: int):
    """``coarse(d)`` and the four directions the mix moves in from it, in the order of
    :func:`mix`'s weights: the coarse luma and chroma of (overview - coarse(d)), d's fine luma
    and fine chroma."""
    d_coarse = coarse(detail_guess, k)
    fine = detail_guess - d_coarse
    fl = luma_part(fine)
    step = overview_guess - d_coarse
    sl = luma_part(step)
    return d_coarse, (sl, step - sl, fl, fine - fl)


def mix(weights, detail_guess: torch.Tensor, overview_guess: torch.Tensor, k: int):
    """The cascade's guess from both networks' guesses (the overview's grown to full size)
    with weights (a, a_chroma, b_luma, b_chroma)."""
    base, feats = mix_features(detail_guess, overview_guess, k)
    return base + sum(w * f for w, f in zip(weights, feats))


def fit_mix_weights(clean: torch.Tensor, detail_guess: torch.Tensor,
                    overview_guess: torch.Tensor, k: int,
                    fixed: dict[int, float] | None = None) -> tuple[float, ...]:
    """(a, a_chroma, b_luma, b_chroma) that minimise the squared error of :func:`mix` against
    ``clean`` (float64 least squares over every pixel of the batch), each clipped to [0, 1];
    ``fixed`` holds some of them (by index) at given values."""
    fixed = fixed or {}
    base, feats = mix_features(detail_guess.double(), overview_guess.double(), k)
    r = clean.double() - base
    for i, v in fixed.items():
        r = r - v * feats[i]
    free = [i for i in range(len(feats)) if i not in fixed]
    out = dict(fixed)
    if free:
        A = torch.stack([feats[i].reshape(-1) for i in free], 1)
        gram = A.T @ A + 1e-12 * torch.eye(len(free), dtype=torch.float64)
        coef = torch.linalg.solve(gram, A.T @ r.reshape(-1))
        out.update({i: float(min(1.0, max(0.0, c))) for i, c in zip(free, coef)})
    return tuple(out[i] for i in range(len(feats)))
