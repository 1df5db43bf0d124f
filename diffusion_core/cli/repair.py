"""The repair commands: ``python -m diffusion_core inpaint ...`` and ``... denoise ...``."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from diffusion_core.maths.samplers import SAMPLERS
from diffusion_core.tasks.repair import (
    DENOISE_MODES,
    add_noise,
    blind_denoise,
    damaged_view,
    denoise_nlm,
    inpaint,
    inpaint_biharmonic,
    masked_psnr,
    noise_words,
    sigma_from_255,
)
from diffusion_core.tasks.restore import psnr


def _save_png(t: torch.Tensor, path) -> None:
    from diffusion_core.media.images import to_pil

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    to_pil(t.clamp(-1, 1)).save(path)


def _load_model_and_image(a):
    from diffusion_core.media.images import load_image
    from diffusion_core.models.registry import get_denoiser
    from diffusion_core.tasks.restore import pick_device

    img = load_image(a.image, max_side=a.size).tensor  # a bad picture fails before the model loads
    device = pick_device(a.device)
    den = get_denoiser(a.model, str(device))
    if getattr(den, "channels", 3) == 1 and img.shape[0] == 3:
        img = img.mean(0, keepdim=True)
    return den, img, device


def _fmt_db(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f} dB"


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the picture (PNG, JPEG, WebP, BMP, TIFF)")
    p.add_argument("--model", default="natural")
    p.add_argument("--size", type=int, default=256, help="longest side to work at")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def _run_cli(body, argv, parser) -> int:
    from diffusion_core.media.images import ImageLoadError
    from diffusion_core.media.masks import MaskError
    from diffusion_core.models.registry import ModelLoadError

    a = parser.parse_args(argv)
    if a.threads:
        torch.set_num_threads(max(int(a.threads), 1))
    try:
        return body(a)
    except (ImageLoadError, ModelLoadError, MaskError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def inpaint_parser() -> argparse.ArgumentParser:
    from diffusion_core.media.masks import PRESETS

    p = argparse.ArgumentParser(prog="python -m diffusion_core inpaint",
                                description="Fill in damaged regions with the diffusion model "
                                            "(RePaint) and, for comparison, biharmonic inpainting.")
    _common_args(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--mask", help="mask picture: white (or painted on transparent) = damaged")
    g.add_argument("--preset", choices=list(PRESETS), help="add this damage to the picture")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--resample", type=int, default=1, help="RePaint r (1 = no jumps back)")
    p.add_argument("--jump-length", type=int, default=10, help="RePaint j")
    p.add_argument("--eta", type=float, default=1.0)
    p.add_argument("--out", default="inpainted.png")
    p.add_argument("--damaged", default=None, help="also write the damaged picture here")
    p.add_argument("--baseline", default=None, help="also write the biharmonic result here")
    return p


def cli_inpaint(argv=None) -> int:
    """``python -m diffusion_core inpaint IMAGE (--mask MASK.png | --preset blocks) --out X``"""
    from diffusion_core.media.masks import load_mask, mask_fraction, preset_mask

    def body(a) -> int:
        den, img, device = _load_model_and_image(a)
        h, w = img.shape[-2:]
        if a.mask:
            mask = load_mask(a.mask, size=(h, w))
        else:
            mask = preset_mask(a.preset, h, w, seed=a.seed)
        frac = mask_fraction(mask)
        if frac >= 1.0:
            raise ValueError("The mask covers the whole picture: there is nothing left to go on.")
        if a.damaged:
            _save_png(damaged_view(img, mask), a.damaged)
        res = inpaint(den, img, mask, steps=a.steps, resample=a.resample,
                      jump_length=a.jump_length, eta=a.eta, seed=a.seed, device=device)
        _save_png(res.final, a.out)
        base = inpaint_biharmonic(img, mask)
        if a.baseline:
            _save_png(base.final, a.baseline)
        print(f"wrote {a.out}: {100 * frac:.1f} % of the picture filled in, {res.calls} model "
              f"calls in {res.seconds:.2f}s on {device}; biharmonic took {base.seconds:.2f}s")
        if a.preset:  # the picture itself is the undamaged original
            print(f"PSNR in the damaged region: diffusion {_fmt_db(masked_psnr(res.final, img, mask))}"
                  f", biharmonic {_fmt_db(masked_psnr(base.final, img, mask))}")
        return 0

    return _run_cli(body, argv, inpaint_parser())


def denoise_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m diffusion_core denoise",
                                description="Blind denoising: estimate how noisy a picture is, "
                                            "then remove that much noise with the diffusion model "
                                            "(and, for comparison, non-local means).")
    _common_args(p)
    p.add_argument("--sigma", default="auto",
                   help="noise level on the 0-255 scale, or 'auto' to estimate it (default)")
    p.add_argument("--add-noise", type=float, default=None, metavar="SIGMA",
                   help="first add this much noise (0-255 scale) to a clean picture, to try it")
    p.add_argument("--mode", choices=list(DENOISE_MODES), default="iterative")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--sampler", choices=list(SAMPLERS), default="ddim")
    p.add_argument("--out", default="denoised.png")
    p.add_argument("--noisy", default=None, help="also write the noisy input here")
    p.add_argument("--baseline", default=None, help="also write the non-local means result here")
    return p


def cli_denoise(argv=None) -> int:
    """``python -m diffusion_core denoise IMAGE [--sigma auto|25] --out X``"""

    def body(a) -> int:
        den, img, device = _load_model_and_image(a)
        if a.sigma in (None, "", "auto"):
            sigma = None
        else:
            try:
                sigma = sigma_from_255(float(a.sigma))
            except ValueError:
                raise ValueError(f"--sigma must be 'auto' or a number, not {a.sigma!r}") from None
        clean = None
        noisy = img
        if a.add_noise is not None:
            clean = img
            noisy = add_noise(img, max(float(a.add_noise), 0.0), seed=a.seed)
        if a.noisy:
            _save_png(noisy, a.noisy)
        res = blind_denoise(den, noisy, sigma=sigma, mode=a.mode, steps=a.steps,
                            sampler=a.sampler, seed=a.seed, device=device, clean=clean)
        _save_png(res.final, a.out)
        how = "estimated" if res.sigma_estimated is not None else "given"
        print(f"noise level ({how}): {res.sigma_255:.1f} on the 0-255 scale "
              f"({noise_words(res.sigma_255)}), matching step {res.step} of 1000")
        base = denoise_nlm(noisy, res.sigma)
        if a.baseline:
            _save_png(base.final, a.baseline)
        print(f"wrote {a.out}: {res.mode}, {res.steps_run} model call(s) in {res.seconds:.2f}s "
              f"on {device}; non-local means took {base.seconds:.2f}s")
        if clean is not None:
            print(f"PSNR: noisy {_fmt_db(res.metrics['noisy_psnr'])}, diffusion "
                  f"{_fmt_db(res.metrics['psnr'])}, non-local means {_fmt_db(psnr(base.final, clean))}")
        return 0

    return _run_cli(body, argv, denoise_parser())
