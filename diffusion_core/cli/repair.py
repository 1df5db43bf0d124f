"""The repair commands: ``python -m diffusion_core inpaint ...`` and ``... denoise ...``.

Both work on the picture at its full size by default (the model runs on overlapping tiles
when it is large, :mod:`diffusion_core.tasks.tiling`) and write a picture of the same size;
``--size`` shrinks it first. The classical method (biharmonic, non-local means) runs beside
the model when its result is asked for (``--baseline``) or when there is an original to score
both against (``--preset`` / ``--add-noise``), unless ``--no-baseline``.
"""

from __future__ import annotations

import argparse

import torch

from diffusion_core.cli.common import add_numbers, add_paths, fmt_db, run_guarded, save_png, step_progress
from diffusion_core.maths.samplers import SPECS
from diffusion_core.media.decode import load_image
from diffusion_core.media.masks import PRESETS, load_mask, mask_fraction, preset_mask
from diffusion_core.models.registry import get_denoiser
from diffusion_core.system.device import pick_device
from diffusion_core.tasks.baselines import denoise_nlm, inpaint_biharmonic
from diffusion_core.tasks.blind import DENOISE_MODES, blind_denoise, noise_words
from diffusion_core.tasks.inpaint import inpaint
from diffusion_core.tasks.metrics import masked_psnr, psnr
from diffusion_core.tasks.pictures import add_noise, damaged_view
from diffusion_core.tasks.restore import DEFAULT_SCHEDULE
from diffusion_core.tasks.tiling import maybe_tiled
from diffusion_core.units import sigma_from_255

MIN_TILE = 64


def _load_model_and_image(a):
    """The picture (full size, or shrunk to ``--size``) and the model, tiled if need be."""
    if a.threads:
        torch.set_num_threads(max(int(a.threads), 1))
    img = load_image(a.image, max_side=a.size).tensor  # a bad picture fails before the model loads
    device = pick_device(a.device)
    den = get_denoiser(a.model, str(device))
    if getattr(den, "channels", 3) == 1 and img.shape[0] == 3:
        img = img.mean(0, keepdim=True)
    tile = max(int(a.tile), MIN_TILE)
    h, w = img.shape[-2:]
    den = maybe_tiled(den, h, w, max_pixels=tile * tile, tile=tile, overlap=min(64, tile // 4))
    return den, img, device


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return v


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the picture (PNG, JPEG, WebP, BMP, TIFF, GIF)")
    p.add_argument("--model", default="natural",
                   help="model name or folder (default: natural, the photo model)")
    p.add_argument("--size", type=_positive, default=None, metavar="PIXELS",
                   help="first shrink the picture so its longest side is at most this many "
                        "pixels, and write the result at that size (default: full size)")
    p.add_argument("--tile", type=int, default=512, metavar="PIXELS",
                   help="the model sees at most PIXELS x PIXELS at once; a larger picture is "
                        f"cut into overlapping tiles (default: 512, at least {MIN_TILE})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random noise (default 0)")
    p.add_argument("--device", default="auto",
                   help="cpu, cuda, mps or auto (a GPU when there is one; default)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the classical method (it is slow on large pictures)")


def add_inpaint_args(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--mask", help="mask picture: white (or painted on transparent) = damaged")
    g.add_argument("--preset", choices=list(PRESETS),
                   help="damage the picture this way first (then both results are scored)")
    add_numbers(p, ("--steps", int, 50, "reverse steps from pure noise to the picture (default 50)"),
                ("--resample", int, 1, "RePaint r: run each stretch of --jump-length steps this many "
                 "times (1 = no jumps back; more agrees better, costs r times the calls)"),
                ("--jump-length", int, 10,
                 "RePaint j: steps in each stretch that --resample repeats (default 10)"),
                ("--eta", float, 1.0, "fresh noise per step: 1 = DDPM's ancestral step, as RePaint "
                 "(default); 0 = deterministic DDIM"))
    add_paths(p, ("--out", "inpainted.png", "where to write the result (PNG)"),
              ("--damaged", None, "also write the damaged picture here"),
              ("--baseline", None, "also write the biharmonic result here"))


def add_denoise_args(p: argparse.ArgumentParser) -> None:
    _common_args(p)
    p.add_argument("--sigma", default="auto",
                   help="noise level on the 0-255 scale, or 'auto' to estimate it (default)")
    p.add_argument("--add-noise", type=float, default=None, metavar="SIGMA",
                   help="first add this much noise (0-255 scale) to a clean picture, to try it")
    p.add_argument("--mode", choices=list(DENOISE_MODES), default="iterative",
                   help="iterative: the reverse process from the matching step (default); "
                        "one_shot: a single call of the model")
    p.add_argument("--sampler", choices=list(SPECS), default="ddim",
                   help="sampler for iterative mode (default ddim)")
    add_numbers(p, ("--steps", int, 10, "sampler steps in iterative mode (default 10)"),
                ("--eta", float, 0.0, "DDIM's fresh noise per step (0 = deterministic; default); "
                 "the other samplers ignore it"))
    add_paths(p, ("--out", "denoised.png", "where to write the result (PNG)"),
              ("--noisy", None, "also write the noisy input here"),
              ("--baseline", None, "also write the non-local means result here"))


def run_inpaint(a) -> int:
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
        save_png(damaged_view(img, mask), a.damaged)
    res = inpaint(den, img, mask, steps=a.steps, resample=a.resample,
                  jump_length=a.jump_length, eta=a.eta, seed=a.seed, device=device,
                  callback=step_progress("inpaint"))
    save_png(res.final, a.out)
    base = None
    if not a.no_baseline and (a.baseline or a.preset):
        base = inpaint_biharmonic(img, mask)
        if a.baseline:
            save_png(base.final, a.baseline)
    print(f"wrote {a.out} ({w}×{h}): {100 * frac:.1f} % of the picture filled in, {res.calls} "
          f"model calls in {res.seconds:.2f}s on {device}"
          + (f"; biharmonic took {base.seconds:.2f}s" if base else ""))
    if a.preset:  # the picture itself is the undamaged original
        line = f"PSNR in the damaged region: diffusion {fmt_db(masked_psnr(res.final, img, mask))}"
        if base:
            line += f", biharmonic {fmt_db(masked_psnr(base.final, img, mask))}"
        print(line)
    return 0


def run_denoise(a) -> int:
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
        save_png(noisy, a.noisy)
    res = blind_denoise(den, noisy, sigma=sigma, mode=a.mode, steps=a.steps, sampler=a.sampler,
                        eta=a.eta, seed=a.seed, device=device, clean=clean,
                        callback=step_progress("denoise"))
    save_png(res.final, a.out)
    how = "estimated" if res.sigma_estimated is not None else "given"
    print(f"noise level ({how}): {res.sigma_255:.1f} on the 0-255 scale "
          f"({noise_words(res.sigma_255)}), matching step {res.step} of {DEFAULT_SCHEDULE[1]}")
    base = None
    if not a.no_baseline and (a.baseline or clean is not None):
        base = denoise_nlm(noisy, res.sigma)
        if a.baseline:
            save_png(base.final, a.baseline)
    h, w = res.final.shape[-2:]
    print(f"wrote {a.out} ({w}×{h}): {res.mode}, {res.steps_run} model call(s) in "
          f"{res.seconds:.2f}s on {device}"
          + (f"; non-local means took {base.seconds:.2f}s" if base else ""))
    if clean is not None:
        line = (f"PSNR: noisy {fmt_db(res.metrics['noisy_psnr'])}, "
                f"diffusion {fmt_db(res.metrics['psnr'])}")
        if base:
            line += f", non-local means {fmt_db(psnr(base.final, clean))}"
        print(line)
    return 0


INPAINT_DESCRIPTION = ("Fill in damaged regions with the diffusion model (RePaint) at the "
                       "picture's full size and, for comparison, biharmonic inpainting.")
DENOISE_DESCRIPTION = ("Blind denoising: estimate how noisy a picture is, then remove that much "
                       "noise with the diffusion model at the picture's full size (and, for "
                       "comparison, non-local means).")


def inpaint_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m diffusion_core inpaint",
                                description=INPAINT_DESCRIPTION)
    add_inpaint_args(p)
    return p


def denoise_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m diffusion_core denoise",
                                description=DENOISE_DESCRIPTION)
    add_denoise_args(p)
    return p


def cli_inpaint(argv=None) -> int:
    """``python -m diffusion_core inpaint IMAGE (--mask MASK.png | --preset blocks) --out X``"""
    a = inpaint_parser().parse_args(argv)
    return run_guarded(lambda: run_inpaint(a))


def cli_denoise(argv=None) -> int:
    """``python -m diffusion_core denoise IMAGE [--sigma auto|25] --out X``"""
    a = denoise_parser().parse_args(argv)
    return run_guarded(lambda: run_denoise(a))
