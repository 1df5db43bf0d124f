"""Make the home page's animation: a built-in photo dissolving into static and coming back.

The shipped ``natural`` model does the coming back: the photo is noised step by step (the
forward process, no model) up to noise step ``--t``, then DDIM walks back to a clean picture.
The GIF loops, so the restored picture dissolves again.

Usage (from the repository root; about 10 s on a laptop CPU)::

    .venv/bin/python scripts/home_loop.py                  # writes docs/home_loop.gif
    .venv/bin/python scripts/home_loop.py --sample astronaut --t 500 --out /tmp/loop.gif
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffusion_core.maths.schedules import make_schedule  # noqa: E402
from diffusion_core.media.export import GIF_MS, frames_gif, restore_animation_frames  # noqa: E402
from diffusion_core.media.samples import list_samples, load_sample  # noqa: E402
from diffusion_core.models.registry import get_denoiser  # noqa: E402
from diffusion_core.tasks.restore import DEFAULT_SCHEDULE, restore  # noqa: E402

DEFAULT_OUT = ROOT / "docs" / "home_loop.gif"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="cat", choices=list_samples(),
                        help="built-in photo (default cat)")
    parser.add_argument("--size", type=int, default=256, help="longest side in pixels (default 256)")
    parser.add_argument("--t", type=int, default=300,
                        help="noise step the photo dissolves to, of 1000 (default 300)")
    parser.add_argument("--forward", type=int, default=10, help="frames of noising (default 10)")
    parser.add_argument("--steps", type=int, default=12, help="DDIM steps back (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    parser.add_argument("--frame-ms", type=int, default=GIF_MS,
                        help=f"milliseconds per frame (default {GIF_MS})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the GIF")
    a = parser.parse_args(argv)

    torch.set_num_threads(1)
    photo = load_sample(a.sample, max_side=a.size, mode="rgb").tensor
    schedule = make_schedule(*DEFAULT_SCHEDULE)
    result = restore(get_denoiser("natural"), photo, schedule, step=a.t, steps=a.steps,
                     sampler="ddim", seed=a.seed, compute_metrics=False)
    frames = restore_animation_frames(photo, result.noise, schedule, a.t, result, a.forward)
    data = frames_gif(frames, a.out, frame_ms=a.frame_ms, max_side=a.size)
    print(f"wrote {a.out}: {len(frames)} frames, {a.size} px, {len(data) / 1e6:.2f} MB "
          f"({a.sample}, noise step {a.t} of {schedule.T}, {a.steps} DDIM steps back, "
          f"seed {a.seed}, {result.seconds:.1f} s of sampling)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
