"""Speed of the photo cascade against its two networks alone (issue 28).

    .venv/bin/python bench/cascade_speed.py [--threads 2]

One 481 x 321 picture (CBSD68's size) at three noise levels (sigma 25 and 100 on the 0-255
scale, and sigma 40 in model units, where only the overview runs); the median of 5 timed calls
after one warm-up call, with the model cache's CPU options (channels-last). Prints a table.
Time it on a quiet machine: other jobs on the cores distort it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffusion_core.models.cascade import overview_factor  # noqa: E402
from diffusion_core.models.registry import get_denoiser  # noqa: E402

H, W = 321, 481
SIGMAS = (0.196, 0.784, 40.0)


def median_ms(fn, y, sigma: float, repeats: int = 5) -> float:
    s = torch.tensor([sigma])
    fn(y, s)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(y, s)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2] * 1000


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    den = get_denoiser("natural", "cpu")
    k = overview_factor(H, W, den.size)
    y = torch.randn(1, 3, H, W, generator=torch.Generator().manual_seed(0))
    ways = {"cascade (natural)": den, "detail network alone": den.detail,
            "overview network alone": lambda v, s: den.overview(F.avg_pool2d(v, k), s / k)}
    mp = H * W / 1e6
    print(f"| {a.threads} threads, {W}x{H} | " + " | ".join(f"sigma {s:g}" for s in SIGMAS) + " |")
    print("|---|" + "---:|" * len(SIGMAS))
    with torch.inference_mode():
        for name, fn in ways.items():
            cells = [median_ms(fn, y, s) for s in SIGMAS]
            print(f"| {name} | " + " | ".join(f"{c:.0f} ms ({c / 1000 / mp:.2f} s/MP)"
                                             for c in cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
