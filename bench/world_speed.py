"""Seconds to draw 16 samples with guidance 3 in 20 steps (DPM-Solver++ 2M, the Create page's
default, and DDIM: 20 model calls on a batch of 32; Heun: 39), per conditional model, with 1
and 2 torch threads: the Create page's run without its sweep.
Writes bench/results/world_speed.md.

    python bench/world_speed.py [--models mnist fashion doodles digits_cond] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["mnist", "fashion", "doodles", "digits_cond"])
    ap.add_argument("--threads", nargs="+", type=int, default=[2, 1])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "world_speed.md"))
    a = ap.parse_args()
    import torch

    from diffusion_core.maths.samplers import SPECS
    from diffusion_core.models.registry import find_model, load_denoiser
    from diffusion_core.training.worlds_check import seconds_per_16

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = []
    for name in a.models:
        info = find_model(name)
        den = load_denoiser(info)
        size = int(info.card.get("size", 32))
        for sampler in ("dpmpp_2m", "ddim", "heun"):
            for t in a.threads:
                torch.set_num_threads(t)
                s = seconds_per_16(den, size, 20, sampler, "cpu", reps=a.reps)
                rows.append(f"| {name} | {size}×{size} | {SPECS[sampler].short_name} "
                            f"({SPECS[sampler].model_calls(20)} calls) | {t} | {s:.2f} s |")
                print(rows[-1], flush=True)
    after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    md = "\n".join([
        "# Create: seconds per 16 samples (guidance 3, 20 steps; DPM-Solver++ 2M is the "
        "page's default)", "",
        f"*`python bench/world_speed.py`, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{os.cpu_count()} CPUs, load average (1/5/15 min) {load} before, {after} after; "
        f"median of {a.reps} runs after one warm-up.*", "",
        "| model | size | sampler (model calls) | torch threads | seconds per 16 |",
        "|---|---|---|---:|---:|", *rows]) + "\n"
    Path(a.out).write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
