"""Repairing real pictures with an unconditional denoiser: inpainting and blind denoising.

* :func:`inpaint` fills in damaged regions RePaint-style (Lugmayr et al. 2022): at every
  reverse step the pixels we know are replaced by the original, noised to that step's level,
  so the model only has to invent the missing part, and it does so in harmony with the rest.
  Optional "resampling" (jump back: re-noise and run a stretch of steps again) lets the
  invented part and the known part agree better, at the price of more model calls.
* :func:`estimate_noise_sigma` measures how noisy a photo already is (wavelet MAD), and
  :func:`blind_denoise` starts the reverse process at the matching step from the noisy
  picture itself, or removes the noise in one go with ``D(y, sigma)``.
* :func:`inpaint_biharmonic` and :func:`denoise_nlm` are the classical methods shown side by
  side (scikit-image), each timed.
* :func:`cli_inpaint` / :func:`cli_denoise` implement ``python -m diffusion_core inpaint`` and
  ``... denoise``.

All pictures are ``(C, H, W)`` float tensors in ``[-1, 1]`` (C = 1 or 3); masks are
``(H, W)`` bool tensors with ``True`` = damaged. Noise levels (sigma) are in the same
``[-1, 1]`` units unless a name says ``_255`` (the usual 0-255 scale: sigma_255 =
sigma * 255 / 2). No streamlit here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from diffusion_core.maths.forward import draw_noise, sigma_at_step, step_for_sigma
from diffusion_core.maths.samplers import SAMPLERS, StopSampling, schedule_sigmas
from diffusion_core.maths.schedules import Schedule, make_schedule
from diffusion_core.tasks.restore import psnr, restore, ssim

MAX_STEPS = 1000
MAX_RESAMPLE = 20
DEFAULT_SCHEDULE = ("linear", 1000)
#: below this estimated noise (0-255 scale) a picture counts as clean and is returned as is
CLEAN_SIGMA_255 = 0.5


def default_schedule() -> Schedule:
    return make_schedule(*DEFAULT_SCHEDULE)


def sigma_to_255(sigma: float) -> float:
    """A noise level in [-1, 1] units -> the usual 0-255 scale."""
    return float(sigma) * 127.5


def sigma_from_255(sigma_255: float) -> float:
    """A noise level on the 0-255 scale -> [-1, 1] units (sigma_255 * 2 / 255)."""
    return float(sigma_255) / 127.5


def noise_words(sigma_255: float) -> str:
    """A plain-language description of a noise level given on the 0-255 scale."""
    s = float(sigma_255)
    if s < 2:
        return "practically clean"
    if s < 8:
        return "a light grain"
    if s < 18:
        return "clearly grainy"
    if s < 35:
        return "heavy noise"
    if s < 60:
        return "very heavy noise"
    return "buried in noise"


# ============================================================================ small helpers


def _as_mask(mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"The mask must be H×W, not {tuple(m.shape)}.")
    if tuple(m.shape) != tuple(image.shape[-2:]):
        raise ValueError(f"The mask is {m.shape[1]}×{m.shape[0]} pixels but the picture is "
                         f"{image.shape[-1]}×{image.shape[-2]}.")
    return m.bool()


def _check_image(image: torch.Tensor) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] not in (1, 3):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"Expected a picture of shape (C, H, W) with C = 1 or 3, got {shape}.")
    if min(image.shape[-2:]) < 4:
        raise ValueError("The picture is too small (it needs at least 4×4 pixels).")
    return image.float()


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB) of two [-1, 1] pictures over the masked pixels only (all channels), after
    clipping and rounding to 8 bits like :func:`restore.psnr`."""
    m = _as_mask(mask, a)
    if not bool(m.any()):
        return float("nan")
    qa = ((a.clamp(-1, 1) + 1) * 127.5).round().double()
    qb = ((b.clamp(-1, 1) + 1) * 127.5).round().double()
    d = (qa - qb)[:, m]
    mse = float(torch.mean(d**2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def damaged_view(image: torch.Tensor, mask: torch.Tensor, fill: float = 1.0) -> torch.Tensor:
    """The picture as the damage leaves it: masked pixels set to ``fill`` (white)."""
    m = _as_mask(mask, image)
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
        y = ((y.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1
    return y


# ============================================================================ inpainting


def repaint_schedule(n: int, jump_length: int = 10, resample: int = 1) -> list[int]:
    """The order in which RePaint visits the noise levels 0..n (0 = noisiest, n = clean).

    Going down one level is a reverse (denoising) step; going up one level re-noises. Every
    ``jump_length`` levels the walk goes back up ``jump_length`` levels, ``resample - 1``
    times, so that stretch is run ``resample`` times in all (Lugmayr et al. 2022, "jump
    length" j and "resampling" r). ``resample = 1`` is plain descent. The last step (to the
    clean picture) is never repeated. About ``n * resample`` model calls."""
    n = max(int(n), 0)
    j = max(int(jump_length), 1)
    r = max(int(resample), 1)
    jumps = {k: r - 1 for k in range(j, n, j)}
    seq = [0]
    level = 0
    while level < n:
        level += 1
        seq.append(level)
        if jumps.get(level, 0) > 0:
            jumps[level] -= 1
            for _ in range(j):
                level -= 1
                seq.append(level)
    return seq


@dataclass
class InpaintResult:
    final: torch.Tensor  # (C,H,W) in [-1, 1]; known pixels exactly equal to the input
    mask: torch.Tensor  # (H,W) bool, True = filled in
    seconds: float = 0.0
    calls: int = 0  # denoiser calls made
    calls_planned: int = 0
    steps: int = 0  # reverse steps in one plain descent
    resample: int = 1
    jump_length: int = 10
    stopped: bool = False
    device: str = "cpu"
    levels: list[float] = field(default_factory=list)  # the noise levels (VE sigma) visited


def inpaint(
    denoiser,
    image: torch.Tensor,
    mask: torch.Tensor,
    steps: int = 50,
    resample: int = 1,
    jump_length: int = 10,
    eta: float = 1.0,
    seed: int = 0,
    schedule: Schedule | None = None,
    start_step: int | None = None,
    device: str | torch.device = "cpu",
    callback: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> InpaintResult:
    """Fill in the masked pixels of ``image`` with the unconditional ``denoiser`` (RePaint).

    In the sampler's VE coordinates (state y at noise level sigma), before each model call
    the known pixels are set to ``x0 + sigma * eps`` with fresh noise, the unknown ones keep
    the sampler's state; the model's estimate then moves the state to the next level with a
    DDIM step (``eta = 1``: DDPM's ancestral step, which RePaint uses; ``eta = 0``:
    deterministic). With ``resample > 1`` every ``jump_length`` steps the state is re-noised
    back up ``jump_length`` levels (``y += sqrt(s_up^2 - s^2) z``) and that stretch is run
    again. The result keeps the known pixels exactly equal to the input.

    Args:
        image: (C, H, W) in [-1, 1]; its values under the mask are never used.
        mask: (H, W) bool, True = missing/damaged.
        steps: reverse steps from ``start_step`` to the clean picture (1..1000).
        start_step: UI noise step to start from (default: the schedule's last, pure noise);
            the unknown part then starts as the known part's mean colour plus noise.
        callback(info): per model call, a dict like the samplers' (``i``, ``n`` = planned
            calls, ``sigma``, ``sigma_next``, ``x``, ``denoised``, ``eps``) plus ``level``,
            ``jumps`` (re-noisings so far) and ``composite`` (the current estimate with the
            known pixels pasted in, (C,H,W) on the CPU). It may raise ``StopSampling``;
            so may ``should_stop()``. The latest estimate is then returned.
    """
    x0 = _check_image(image)
    m = _as_mask(mask, x0)
    device = torch.device(device)
    schedule = schedule or default_schedule()
    steps = int(min(max(int(steps), 1), MAX_STEPS))
    resample = int(min(max(int(resample), 1), MAX_RESAMPLE))
    jump_length = max(int(jump_length), 1)
    result = InpaintResult(final=x0.clone(), mask=m.clone(), steps=steps, resample=resample,
                           jump_length=jump_length, device=str(device))
    if not bool(m.any()):
        return result  # nothing to fill in
    start = schedule.T if start_step is None else int(min(max(int(start_step), 1), schedule.T))
    sigmas, _ = schedule_sigmas(schedule, start - 1, steps)
    sig = [float(s) for s in sigmas]
    n = len(sig) - 1
    result.levels = sig
    seq = repaint_schedule(n, jump_length, resample)
    n_calls = sum(1 for a, b in zip(seq, seq[1:]) if b > a)
    result.calls_planned = n_calls

    gen = torch.Generator(device="cpu").manual_seed(int(seed))

    def randn() -> torch.Tensor:
        return torch.randn((1, *x0.shape), generator=gen, dtype=torch.float32).to(device)

    known = x0[None].to(device)
    keep = (~m).to(device)[None, None]  # True where the pixel is known
    fill = known[0][:, ~m.to(device)].mean(dim=1) if bool((~m).any()) else torch.zeros(x0.shape[0])
    y = torch.where(keep, known, fill.reshape(1, -1, 1, 1).to(device)) + sig[0] * randn()
    denoised = torch.where(keep, known, y)
    calls = 0
    jumps = 0
    t0 = time.perf_counter()
    try:
        with torch.inference_mode():
            for a, b in zip(seq, seq[1:]):
                if b < a:  # jump back: forward-noise from level a up to level b
                    y = y + math.sqrt(max(sig[b] ** 2 - sig[a] ** 2, 0.0)) * randn()
                    jumps += 1
                    continue
                s, s_next = sig[a], sig[b]
                # known pixels: the original at this noise level, with fresh noise
                y = torch.where(keep, known + s * randn(), y)
                denoised = denoiser(y, torch.full((1,), s, device=device)).float()
                calls += 1
                if callback is not None:
                    eps = (y - denoised) / s
                    comp = torch.where(keep, known, denoised.clamp(-1, 1))[0].cpu()
                    callback({"i": calls - 1, "n": n_calls, "sigma": s, "sigma_next": s_next,
                              "x": y, "denoised": denoised, "eps": eps, "level": a,
                              "jumps": jumps, "composite": comp})
                if should_stop is not None and should_stop():
                    raise StopSampling
                if s_next <= 0:
                    y = denoised
                    continue
                c = 0.0
                if eta > 0:
                    c = min(s_next, float(eta) * math.sqrt(max(s_next**2 * (s**2 - s_next**2)
                                                               / s**2, 0.0)))
                y = denoised + math.sqrt(max(s_next**2 - c**2, 0.0)) * (y - denoised) / s
                if c > 0:
                    y = y + c * randn()
    except StopSampling:
        result.stopped = True
        y = denoised
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result.seconds = time.perf_counter() - t0
    result.calls = calls
    filled = y[0].float().cpu().clamp(-1, 1)
    result.final = torch.where(m[None], filled, x0)
    return result


# ============================================================================ noise estimation


def _haar_bands(x: np.ndarray):
    """One level of the orthonormal 2-D Haar transform of each channel (C, H, W) -> the mean,
    horizontal, vertical and diagonal bands on the 2×2 blocks (odd edges dropped)."""
    h2, w2 = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    a, b = x[:, 0:h2:2, 0:w2:2], x[:, 0:h2:2, 1:w2:2]
    c, d = x[:, 1:h2:2, 0:w2:2], x[:, 1:h2:2, 1:w2:2]
    return (a + b + c + d) / 4, (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2


def _median_abs(v: np.ndarray) -> float:
    """Median of |v|, interpolated inside a run of tied values: 8-bit pictures give
    coefficients on a grid, and the plain median would jump from one grid value to the next."""
    a = np.sort(np.round(np.abs(v.ravel()), 6))
    n = a.size
    if n == 0:
        return 0.0
    med = float(np.median(a))
    lo, hi = int(np.searchsorted(a, med, "left")), int(np.searchsorted(a, med, "right"))
    ties = hi - lo
    if ties <= 1:
        return med
    gaps = [g for g in ((med - a[lo - 1]) if lo > 0 else 0.0,
                        (a[hi] - med) if hi < n else 0.0) if g > 0]
    if not gaps:
        return med
    width = min(gaps)
    lower = max(med - width / 2, 0.0)
    return float(lower + (med + width / 2 - lower) * (n / 2 - lo) / ties)


def estimate_noise_sigma(img, smooth_fraction: float = 0.25, clip_margin: float = 2.0) -> float:
    """Estimate the standard deviation of white Gaussian noise in a picture.

    ``img`` is a (C, H, W) or (H, W) tensor/array in [-1, 1]; the result is in the same
    units (multiply by 127.5 for the 0-255 scale).

    The classic wavelet estimate (Donoho & Johnstone 1994; what
    ``skimage.restoration.estimate_sigma`` computes with Daubechies wavelets): the finest
    diagonal detail coefficients of an orthonormal wavelet transform are mostly noise, and
    their median absolute deviation / 0.6745 is the noise std. Here with the Haar wavelet on
    2×2 blocks, plus two refinements that matter on real photos:

    * Image detail also lands in the diagonal band and inflates the plain estimate on clean
      or lightly noisy textured photos. Only the ``smooth_fraction`` of blocks with the
      least activity is used, where activity is measured from the block's *other* bands and
      its neighbours' (for Gaussian noise the four Haar coefficients of a block are
      independent, so choosing blocks this way does not bias the noise measured).
    * Pixels clipped at black or white carry less noise: blocks whose mean lies within
      ``clip_margin`` plain estimates of either end are left out.

    All channels are pooled (one noise level for the picture). On the built-in photos at
    256 px and more it is within about 10 % for sigma 5..50 (0-255 scale; typically 2-5 %),
    less precise on small pictures (fewer blocks: up to ~20 % at 128 px and sigma 5). It
    overestimates on fine textures (grass, stained tissue) and on pictures that are mostly
    clipped black (night sky), and it reads spatially correlated noise (after shrinking,
    demosaicing or JPEG) as weaker than it is.
    """
    x = torch.as_tensor(img).detach().cpu().double().numpy() if not isinstance(img, np.ndarray) \
        else img.astype(np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or min(x.shape[1:]) < 4:
        raise ValueError("Noise estimation needs a picture of at least 4×4 pixels.")
    mean, hl, lh, hh = _haar_bands(x)
    s_plain = _median_abs(hh) / 0.6745
    pieces = []
    for ch in range(x.shape[0]):
        mu = mean[ch]
        act = np.abs(hl[ch]) + np.abs(lh[ch])
        grad = np.zeros_like(mu)
        grad[1:-1, :] += np.abs(mu[2:, :] - mu[:-2, :])
        grad[:, 1:-1] += np.abs(mu[:, 2:] - mu[:, :-2])
        ah = np.abs(hh[ch])
        nb = np.zeros_like(ah)
        nb[1:, :] += ah[:-1, :]
        nb[:-1, :] += ah[1:, :]
        nb[:, 1:] += ah[:, :-1]
        nb[:, :-1] += ah[:, 1:]
        act = act + grad + nb / 2
        ok = (mu > -1 + clip_margin * s_plain) & (mu < 1 - clip_margin * s_plain)
        if ok.sum() < 64:
            ok = np.ones_like(ok)
        v, av = hh[ch][ok], act[ok]
        thr = np.quantile(av, min(max(float(smooth_fraction), 0.01), 1.0))
        pieces.append(v[av <= thr])
    sel = np.concatenate(pieces)
    if sel.size < 32:
        return float(s_plain)
    return float(_median_abs(sel) / 0.6745)


def step_for_noise(schedule: Schedule, sigma: float) -> int:
    """The UI step (1..T) whose noise level matches ``sigma`` ([-1, 1] units)."""
    return step_for_sigma(schedule, max(float(sigma), 1e-6))


# ============================================================================ blind denoising


@dataclass
class DenoiseResult:
    final: torch.Tensor  # (C,H,W) in [-1, 1]
    noisy: torch.Tensor
    sigma: float  # the noise level used ([-1, 1] units)
    sigma_estimated: float | None  # what estimate_noise_sigma said (None if sigma was given)
    step: int  # the matching UI step (0: the picture was left as is)
    mode: str  # "iterative" or "one_shot"
    steps_run: int = 0
    seconds: float = 0.0
    estimate_seconds: float = 0.0
    stopped: bool = False
    device: str = "cpu"
    metrics: dict = field(default_factory=dict)  # psnr/ssim vs the clean picture, if given

    @property
    def sigma_255(self) -> float:
        return sigma_to_255(self.sigma)


DENOISE_MODES = {"iterative": "Step by step (the reverse process from the matching step)",
                 "one_shot": "In one go (a single call of the denoiser)"}


def blind_denoise(
    denoiser,
    noisy: torch.Tensor,
    sigma: float | None = None,
    mode: str = "iterative",
    steps: int = 10,
    sampler: str = "ddim",
    eta: float = 0.0,
    schedule: Schedule | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    callback: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    clean: torch.Tensor | None = None,
) -> DenoiseResult:
    """Remove noise from an already-noisy picture ``noisy = x0 + sigma * n``.

    ``sigma`` ([-1, 1] units) defaults to :func:`estimate_noise_sigma`. The matching UI step
    is the one whose noise level is closest; ``mode="iterative"`` runs the reverse process
    from that step with ``steps`` sampler steps, starting from the noisy picture itself
    (converted to the DDPM state ``x_t = y / sqrt(1 + sigma_t^2)``); ``mode="one_shot"``
    returns ``D(noisy, sigma)``. ``clean`` (if known) adds PSNR/SSIM to the metrics.
    A picture whose noise is below ``CLEAN_SIGMA_255`` is returned unchanged."""
    y = _check_image(noisy)
    if mode not in DENOISE_MODES:
        raise ValueError(f"Unknown mode {mode!r}; choose one of {', '.join(DENOISE_MODES)}.")
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}")
    schedule = schedule or default_schedule()
    device = torch.device(device)
    t0 = time.perf_counter()
    est = None
    if sigma is None:
        est = estimate_noise_sigma(y)
        sigma = est
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError("The noise level must be a positive number.")
    est_s = time.perf_counter() - t0
    res = DenoiseResult(final=y.clamp(-1, 1), noisy=y, sigma=sigma, sigma_estimated=est,
                        step=0, mode=mode, estimate_seconds=est_s, device=str(device))
    if sigma_to_255(sigma) >= CLEAN_SIGMA_255:
        res.step = step_for_noise(schedule, sigma)
        if mode == "one_shot":
            t1 = time.perf_counter()
            with torch.inference_mode():
                x = y[None].to(device)
                den = denoiser(x, torch.full((1,), sigma, device=device)).float()
            if callback is not None:
                callback({"i": 0, "n": 1, "sigma": sigma, "sigma_next": 0.0, "x": x,
                          "denoised": den, "eps": (x - den) / sigma, "step": res.step})
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            res.seconds = time.perf_counter() - t1
            res.final = den[0].cpu().clamp(-1, 1)
            res.steps_run = 1
        else:
            sig_step = sigma_at_step(schedule, res.step)
            x_t = y / math.sqrt(1.0 + sig_step**2)  # the DDPM state at that step
            r = restore(denoiser, None, schedule, res.step, steps, sampler=sampler, seed=seed,
                        eta=eta, device=device, callback=callback, keep_frames=False,
                        noisy_input=x_t, should_stop=should_stop, compute_metrics=False)
            res.final, res.seconds, res.steps_run = r.final, r.seconds, r.steps_run
            res.stopped = r.stopped
    if clean is not None:
        c = clean.float()
        res.metrics = {"psnr": psnr(res.final, c), "ssim": ssim(res.final, c),
                       "noisy_psnr": psnr(y, c)}
    return res


# ============================================================================ classical baselines


@dataclass
class BaselineResult:
    final: torch.Tensor
    seconds: float
    name: str


def _to_hwc(x: torch.Tensor) -> np.ndarray:
    a = x.detach().cpu().double().numpy()
    return a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0))


def _from_hwc(a: np.ndarray, channels: int) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(a, dtype=np.float32))
    return t[None] if channels == 1 or t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def inpaint_biharmonic(image: torch.Tensor, mask: torch.Tensor) -> BaselineResult:
    """Classical inpainting: the smoothest surface (biharmonic equation) that meets the known
    pixels at the edges of each hole (``skimage.restoration.inpaint_biharmonic``)."""
    from skimage.restoration import inpaint_biharmonic as _biharmonic

    x = _check_image(image)
    m = _as_mask(mask, x)
    t0 = time.perf_counter()
    if not bool(m.any()):
        return BaselineResult(x.clone(), 0.0, "biharmonic")
    if not bool((~m).any()):
        return BaselineResult(torch.zeros_like(x), time.perf_counter() - t0, "biharmonic")
    out = _biharmonic(_to_hwc(x), m.numpy(), channel_axis=None if x.shape[0] == 1 else -1)
    filled = _from_hwc(out, x.shape[0]).clamp(-1, 1)
    return BaselineResult(torch.where(m[None], filled, x), time.perf_counter() - t0, "biharmonic")


def denoise_nlm(noisy: torch.Tensor, sigma: float, h_factor: float = 0.8) -> BaselineResult:
    """Classical denoising: non-local means (``skimage.restoration.denoise_nl_means``, fast
    mode, 5×5 patches searched within 13×13), given the noise level ``sigma`` ([-1, 1])."""
    from skimage.restoration import denoise_nl_means

    y = _check_image(noisy)
    s01 = float(sigma) / 2.0  # [0, 1] units
    t0 = time.perf_counter()
    if s01 <= 0:
        return BaselineResult(y.clone(), 0.0, "nl-means")
    img = (_to_hwc(y) + 1.0) / 2.0
    out = denoise_nl_means(img, h=h_factor * s01, sigma=s01, fast_mode=True, patch_size=5,
                           patch_distance=6, channel_axis=None if y.shape[0] == 1 else -1)
    res = (_from_hwc(out, y.shape[0]) * 2.0 - 1.0).clamp(-1, 1)
    return BaselineResult(res, time.perf_counter() - t0, "nl-means")
