"""Repair benchmark: diffusion inpainting vs biharmonic, blind vs informed denoising.

Usage (from the repository root)::

    .venv/bin/python bench/repair_bench.py                       # 256 px, 4 photos, 1 thread
    .venv/bin/python bench/repair_bench.py --size 128 --images camera,cat --steps 20

On each sample photo:

* **Inpainting** with a 10 % block mask (4 square holes, seeded): RePaint with the shipped
  model (plain descent, and with resampling at about the same number of model calls) against
  scikit-image's biharmonic inpainting, scored by PSNR over the damaged pixels only.
* **Blind denoising** at sigma 25 (0-255 scale, clipped and rounded to 8 bits): the model given
  the *estimated* noise level against the same model given the *true* level (PSNR
  difference), in one go (D(y, sigma)) and step by step (DDIM from the matching step), with
  non-local means (given the estimate) as the classical reference.

Writes ``bench/results/repair.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffusion_core.media.masks import mask_fraction, preset_mask  # noqa: E402
from diffusion_core.media.samples import SAMPLES, load_sample  # noqa: E402
from diffusion_core.models.registry import find_model, get_denoiser  # noqa: E402
from diffusion_core.system.device import device_label, pick_device  # noqa: E402
from diffusion_core.tasks.baselines import denoise_nlm, inpaint_biharmonic  # noqa: E402
from diffusion_core.tasks.blind import blind_denoise  # noqa: E402
from diffusion_core.tasks.inpaint import inpaint  # noqa: E402
from diffusion_core.tasks.metrics import masked_psnr, psnr  # noqa: E402
from diffusion_core.tasks.pictures import add_noise  # noqa: E402
from diffusion_core.units import sigma_from_255, sigma_to_255  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "repair.md"


def run(images: list[str], size: int, steps: int, resample: int, jump: int, sigma_255: float,
        denoise_steps: int, model: str, device: torch.device, seed: int) -> dict:
    den = get_denoiser(model, str(device))
    inp_rows, den_rows = [], []
    for name in images:
        x = load_sample(name, max_side=size).tensor
        h, w = x.shape[-2:]
        # ---------------------------------------------------------------- inpainting
        m = preset_mask("blocks", h, w, seed=seed, area=0.10)
        base = inpaint_biharmonic(x, m)
        plain = inpaint(den, x, m, steps=steps, resample=1, seed=seed, device=device)
        rs_steps = max(steps // resample, 1)
        resampled = inpaint(den, x, m, steps=rs_steps, resample=resample, jump_length=jump,
                            seed=seed, device=device)
        inp_rows.append({
            "image": name, "size": f"{w}x{h}", "channels": x.shape[0],
            "masked_fraction": mask_fraction(m),
            "biharmonic_psnr": masked_psnr(base.final, x, m), "biharmonic_s": base.seconds,
            "repaint_psnr": masked_psnr(plain.final, x, m), "repaint_s": plain.seconds,
            "repaint_calls": plain.calls,
            "resample_psnr": masked_psnr(resampled.final, x, m), "resample_s": resampled.seconds,
            "resample_calls": resampled.calls,
            "fill_mean_psnr": masked_psnr(_mean_fill(x, m), x, m),
        })
        print(json.dumps(inp_rows[-1]), flush=True)
        # ---------------------------------------------------------------- blind denoising
        noisy = add_noise(x, sigma_255, seed=seed)
        true_sigma = sigma_from_255(sigma_255)
        row = {"image": name, "noisy_psnr": psnr(noisy, x)}
        for mode, n in (("one_shot", 1), ("iterative", denoise_steps)):
            blind = blind_denoise(den, noisy, sigma=None, mode=mode, steps=n, seed=seed,
                                  device=device, clean=x)
            told = blind_denoise(den, noisy, sigma=true_sigma, mode=mode, steps=n, seed=seed,
                                 device=device, clean=x)
            row["est_sigma_255"] = sigma_to_255(blind.sigma)
            row["est_step"], row["true_step"] = blind.step, told.step
            row[f"{mode}_blind_psnr"] = blind.metrics["psnr"]
            row[f"{mode}_true_psnr"] = told.metrics["psnr"]
            row[f"{mode}_s"] = told.seconds
        nlm = denoise_nlm(noisy, sigma_from_255(row["est_sigma_255"]))
        row["nlm_psnr"], row["nlm_s"] = psnr(nlm.final, x), nlm.seconds
        den_rows.append(row)
        print(json.dumps(row), flush=True)
    return {"inpaint": inp_rows, "denoise": den_rows}


def _mean_fill(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The crudest baseline: every missing pixel gets the known pixels' mean colour."""
    mean = x[:, ~m].mean(dim=1).reshape(-1, 1, 1)
    return torch.where(m[None], mean.expand_as(x), x)


def _mean(rows, key) -> float:
    return sum(r[key] for r in rows) / max(len(rows), 1)


def markdown(res: dict, args, device: torch.device, seconds: float) -> str:
    info = find_model(args.model)
    card = info.card
    lines = [
        "# Repair benchmark",
        "",
        f"Model **{args.model}** ({card.get('architecture', '?')}, {card.get('parameters', '?'):,} "
        f"parameters, trained {card.get('steps', '?')} steps of a planned "
        f"{card.get('config', {}).get('steps', '?')}: **early in training**). "
        f"{device_label(device)}, torch {torch.__version__}, Python {platform.python_version()}; "
        f"{seconds / 60:.1f} min in all. Command: `python bench/repair_bench.py "
        f"--size {args.size} --steps {args.steps} --resample {args.resample} --jump {args.jump} "
        f"--images {','.join(args.images)} --threads {args.threads}`.",
        "",
        "## Inpainting: 10 % block mask (4 square holes), PSNR over the damaged pixels",
        "",
        f"RePaint: {args.steps} reverse steps (DDPM-like, eta = 1) from pure noise; "
        f"\"+ resampling\": {max(args.steps // args.resample, 1)} steps with r = {args.resample}, "
        f"j = {args.jump} (about the same number of model calls). Known pixels are kept exactly "
        "by every method. Mean fill = every hole pixel set to the picture's mean colour.",
        "",
        "| image | size | holes | mean fill | biharmonic | RePaint | RePaint + resampling |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["inpaint"]:
        lines.append(
            f"| {SAMPLES[r['image']].title} | {r['size']} | {100 * r['masked_fraction']:.1f} % "
            f"| {r['fill_mean_psnr']:.2f} dB "
            f"| {r['biharmonic_psnr']:.2f} dB ({r['biharmonic_s']:.2f} s) "
            f"| {r['repaint_psnr']:.2f} dB ({r['repaint_calls']} calls, {r['repaint_s']:.1f} s) "
            f"| {r['resample_psnr']:.2f} dB ({r['resample_calls']} calls, {r['resample_s']:.1f} s) |")
    rows = res["inpaint"]
    lines.append(
        f"| **mean** | | | {_mean(rows, 'fill_mean_psnr'):.2f} dB "
        f"| **{_mean(rows, 'biharmonic_psnr'):.2f} dB** | **{_mean(rows, 'repaint_psnr'):.2f} dB** "
        f"| **{_mean(rows, 'resample_psnr'):.2f} dB** |")
    lines += [
        "",
        f"## Blind denoising at sigma {args.sigma:g} (0-255 scale), PSNR against the clean picture",
        "",
        "\"blind\": the model is given the noise level estimated from the noisy picture; "
        "\"told\": the true level. Step by step = DDIM with "
        f"{args.denoise_steps} steps from the matching step. Non-local means gets the estimate.",
        "",
        "| image | estimated sigma | step (est / true) | noisy | one go: blind / told (diff) "
        "| step by step: blind / told (diff) | non-local means |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["denoise"]:
        d1 = r["one_shot_blind_psnr"] - r["one_shot_true_psnr"]
        d2 = r["iterative_blind_psnr"] - r["iterative_true_psnr"]
        lines.append(
            f"| {SAMPLES[r['image']].title} | {r['est_sigma_255']:.1f} | {r['est_step']} / "
            f"{r['true_step']} | {r['noisy_psnr']:.2f} dB "
            f"| {r['one_shot_blind_psnr']:.2f} / {r['one_shot_true_psnr']:.2f} dB ({d1:+.2f}) "
            f"| {r['iterative_blind_psnr']:.2f} / {r['iterative_true_psnr']:.2f} dB ({d2:+.2f}) "
            f"| {r['nlm_psnr']:.2f} dB ({r['nlm_s']:.2f} s) |")
    rows = res["denoise"]
    lines.append(
        f"| **mean** | {_mean(rows, 'est_sigma_255'):.1f} | | {_mean(rows, 'noisy_psnr'):.2f} dB "
        f"| {_mean(rows, 'one_shot_blind_psnr'):.2f} / {_mean(rows, 'one_shot_true_psnr'):.2f} dB "
        f"({_mean(rows, 'one_shot_blind_psnr') - _mean(rows, 'one_shot_true_psnr'):+.2f}) "
        f"| {_mean(rows, 'iterative_blind_psnr'):.2f} / {_mean(rows, 'iterative_true_psnr'):.2f} dB "
        f"({_mean(rows, 'iterative_blind_psnr') - _mean(rows, 'iterative_true_psnr'):+.2f}) "
        f"| {_mean(rows, 'nlm_psnr'):.2f} dB |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", default="astronaut,cat,camera,retina",
                   help="comma-separated built-in sample names")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=50, help="RePaint reverse steps")
    p.add_argument("--resample", type=int, default=2, help="RePaint r for the resampling run")
    p.add_argument("--jump", type=int, default=5, help="RePaint jump length j")
    p.add_argument("--sigma", type=float, default=25.0, help="noise for denoising (0-255)")
    p.add_argument("--denoise-steps", type=int, default=10)
    p.add_argument("--model", default="natural")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    args.images = [n.strip() for n in args.images.split(",") if n.strip()]
    unknown = [n for n in args.images if n not in SAMPLES]
    if unknown:
        p.error(f"unknown sample(s) {unknown}; choose from {sorted(SAMPLES)}")
    torch.set_num_threads(max(args.threads, 1))
    device = pick_device(args.device)
    t0 = time.perf_counter()
    res = run(args.images, args.size, args.steps, args.resample, args.jump, args.sigma,
              args.denoise_steps, args.model, device, args.seed)
    text = markdown(res, args, device, time.perf_counter() - t0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
