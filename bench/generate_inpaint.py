"""Generation and inpainting with a photo model: the issue-19 acceptance checks, in one run.

Usage (from the repository root)::

    .venv/bin/python bench/generate_inpaint.py                  # natural, 10 CBSD68 images
    .venv/bin/python bench/generate_inpaint.py --model runs/x/export --images 2 --samples 2 \\
        --out /tmp/quick

* **Inpainting** on the first ``--images`` CBSD68 pictures, centre 256x256 crop, the "missing
  blocks" preset with seed 0: ``--samples`` RePaint samples (``--steps`` model calls each,
  eta 1) against scikit-image's biharmonic fill, PSNR over the damaged pixels only. Reported:
  the PSNR of the mean of the samples (the posterior-mean estimate), each sample's PSNR, and
  whether the known pixels came back unchanged.
* **From pure static**: ``--seeds`` samples at 64x64 and 256x256, DPM-Solver++(2M) with
  ``--gen-steps`` steps from sigma 80, written as one PNG grid per size.

Writes ``<out>.md``, ``<out>.json`` and ``<out>_static_<size>.png`` (default
``bench/results/generate_inpaint``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffusion_core.maths.samplers import generate  # noqa: E402
from diffusion_core.media.decode import load_image  # noqa: E402
from diffusion_core.media.masks import mask_fraction, preset_mask  # noqa: E402
from diffusion_core.media.viz import grid_image  # noqa: E402
from diffusion_core.models.registry import get_denoiser, load_denoiser  # noqa: E402
from diffusion_core.tasks.baselines import inpaint_biharmonic  # noqa: E402
from diffusion_core.tasks.inpaint import inpaint  # noqa: E402
from diffusion_core.tasks.metrics import masked_psnr  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "testsets" / "CBSD68"
DEFAULT_OUT = ROOT / "bench" / "results" / "generate_inpaint"


def open_model(name: str):
    """A registered model by name, or a folder with model.safetensors + card.json."""
    p = Path(name)
    if (p / "model.safetensors").exists():
        from diffusion_core.models.registry import ModelInfo

        card = json.loads((p / "card.json").read_text()) if (p / "card.json").exists() else {}
        return load_denoiser(ModelInfo(name=p.name, path=p, source="user", card=card))
    return get_denoiser(name, "cpu")


def centre_crop(x: torch.Tensor, side: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return x[..., top:top + side, left:left + side]


def inpaint_rows(den, paths: list[Path], samples: int, steps: int, side: int) -> list[dict]:
    rows = []
    for path in paths:
        x = centre_crop(load_image(path, max_side=None).tensor, side)
        mask = preset_mask("blocks", *x.shape[-2:], seed=0)
        base = inpaint_biharmonic(x, mask)
        fills, psnrs, kept = [], [], True
        t0 = time.perf_counter()
        for s in range(samples):
            res = inpaint(den, x, mask, steps=steps, eta=1.0, seed=s)
            fills.append(res.final)
            psnrs.append(masked_psnr(res.final, x, mask))
            kept &= bool(torch.equal(res.final[:, ~mask], x[:, ~mask]))
        secs = (time.perf_counter() - t0) / samples
        mean_fill = torch.stack(fills).mean(0)
        rows.append({"image": path.name, "holes": mask_fraction(mask),
                     "biharmonic": masked_psnr(base.final, x, mask),
                     "mean_of_samples": masked_psnr(mean_fill, x, mask),
                     "samples": psnrs, "known_pixels_unchanged": kept, "s_per_sample": secs})
        print(f"{path.name}: biharmonic {rows[-1]['biharmonic']:.2f}, mean of {samples} "
              f"{rows[-1]['mean_of_samples']:.2f}, samples "
              + " ".join(f"{p:.2f}" for p in psnrs), flush=True)
    return rows


def static_grids(den, seeds: int, steps: int, out: Path) -> list[str]:
    files = []
    for size in (64, 256):
        pics = [generate(den, (1, getattr(den, "channels", 3), size, size), steps,
                         sampler="dpmpp_2m", seed=seed)[0] for seed in range(seeds)]
        grid = grid_image(torch.stack(pics).clamp(-1, 1), nrow=seeds // 2 if seeds >= 4 else seeds)
        f = out.with_name(f"{out.name}_static_{size}.png")
        grid.save(f)
        files.append(str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f))
    return files


def markdown(res: dict) -> str:
    rows = res["inpaint"]
    lines = [
        "# Generation and inpainting",
        "",
        f"Model `{res['model']}`; {res['cpu']}, {res['threads']} thread(s), torch {torch.__version__}; "
        f"{res['seconds']:.0f} s in all. Command: `{res['command']}`.",
        "",
        f"## Inpainting: first {len(rows)} CBSD68 images, centre {res['side']}x{res['side']}, "
        f"\"missing blocks\" (seed 0), {res['steps']} model calls per sample, eta 1",
        "",
        "PSNR over the damaged pixels only. \"mean of samples\": the average of the "
        f"{res['samples']} RePaint samples, scored as one picture.",
        "",
        "| image | holes | biharmonic | mean of samples | samples (min / mean / max) "
        "| known pixels kept | s per sample |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        s = r["samples"]
        lines.append(f"| {r['image']} | {100 * r['holes']:.1f} % | {r['biharmonic']:.2f} | "
                     f"{r['mean_of_samples']:.2f} | {min(s):.2f} / {np.mean(s):.2f} / {max(s):.2f} | "
                     f"{'yes' if r['known_pixels_unchanged'] else 'NO'} | {r['s_per_sample']:.1f} |")
    m = res["summary"]
    lines += [f"| **mean** | | **{m['biharmonic']:.2f}** | **{m['mean_of_samples']:.2f}** | "
              f"{m['worst_sample_gap']:+.2f} dB worst single sample vs biharmonic | | |", "",
              f"## From pure static: {res['seeds']} seeds, DPM-Solver++(2M), {res['gen_steps']} steps",
              ""]
    lines += [f"![{f}]({Path(f).name})" for f in res["static"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="natural", help="model name or folder (default natural)")
    p.add_argument("--images", type=int, default=10, help="first N CBSD68 images (default 10)")
    p.add_argument("--samples", type=int, default=4, help="RePaint samples per image (default 4)")
    p.add_argument("--steps", type=int, default=50, help="RePaint model calls (default 50)")
    p.add_argument("--side", type=int, default=256, help="centre crop side (default 256)")
    p.add_argument("--seeds", type=int, default=8, help="pure-static samples per size (default 8)")
    p.add_argument("--gen-steps", type=int, default=20, help="DPM-Solver++ steps (default 20)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--data", default=str(DATA), help="CBSD68 folder")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output path without extension")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    data = Path(a.data)
    if not data.is_dir():
        print(f"skipped: {data} not found")
        return 0
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    den = open_model(a.model)
    t0 = time.perf_counter()
    paths = sorted(q for q in data.iterdir() if q.suffix.lower() == ".png")[: a.images]
    with torch.inference_mode():
        rows = inpaint_rows(den, paths, a.samples, a.steps, a.side)
        static = static_grids(den, a.seeds, a.gen_steps, out)
    summary = {"biharmonic": float(np.mean([r["biharmonic"] for r in rows])),
               "mean_of_samples": float(np.mean([r["mean_of_samples"] for r in rows])),
               "worst_sample_gap": float(min(min(r["samples"]) - r["biharmonic"] for r in rows))}
    res = {"model": a.model, "cpu": platform.processor() or platform.machine(),
           "threads": a.threads, "seconds": time.perf_counter() - t0, "side": a.side,
           "steps": a.steps, "samples": a.samples, "seeds": a.seeds, "gen_steps": a.gen_steps,
           "command": "python bench/generate_inpaint.py " + " ".join(argv or sys.argv[1:]),
           "inpaint": rows, "summary": summary, "static": static}
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
