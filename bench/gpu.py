"""The app's own GPU path, measured: the Restore page's job (``jobs.restore.RestoreJob``, with
its frames and per-step metrics) at 512x512 x 50 steps on CUDA, in float32 and under fp16 and
bf16 autocast. Run it whenever a GPU is lent (one short call)::

    .venv/bin/python bench/gpu.py                        # cuda, 512 px, 50 steps -> bench/results/gpu.md
    .venv/bin/python bench/gpu.py --device cpu --size 64 --steps 3 --out /tmp/gpu_smoke   # smoke

Each variant: one warm-up run (kernel selection, caches), then ``--repeats`` timed runs of the
whole job (start to result, as the page waits for it); reported are the median seconds, ms per
step, steps per second, peak GPU memory and the PSNR of the variant's result against the
float32 result (same seed, same noise). Goal (issue 21): under 1 s for the 50 steps.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffusion_core.jobs.restore import RestoreJob  # noqa: E402
from diffusion_core.maths.samplers import DenoiserWrapper  # noqa: E402
from diffusion_core.maths.schedules import make_schedule  # noqa: E402
from diffusion_core.media.samples import load_sample  # noqa: E402
from diffusion_core.models.registry import get_denoiser  # noqa: E402
from diffusion_core.tasks.metrics import psnr  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "gpu"


class Autocast(DenoiserWrapper):
    """Runs the wrapped denoiser under autocast to ``dtype`` and returns float32."""

    def __init__(self, denoiser, dtype: torch.dtype):
        super().__init__(denoiser)
        self.dtype = dtype

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=self.dtype):
            return self.den(x, sigma).float()


def run_job(den, image, schedule, step: int, steps: int, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    job = RestoreJob(den, image, schedule, step, steps, sampler="ddim", seed=0, device=device)
    job.start()
    job.wait()
    if device.type == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    if job.state != "done":
        raise RuntimeError(f"the job ended {job.state}: {job.error}")
    mem = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return job.result, secs, mem


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke run")
    p.add_argument("--model", default="natural", help="photo model (default natural)")
    p.add_argument("--size", type=int, default=512, help="picture side in pixels (default 512)")
    p.add_argument("--steps", type=int, default=50, help="sampler steps (default 50)")
    p.add_argument("--step", type=int, default=600, help="noise step to start from (default 600)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per variant (default 3)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output path without extension")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing measured (use --device cpu for a smoke run)")
        return 0
    den = get_denoiser(a.model, str(device))
    image = load_sample("astronaut", max_side=a.size).tensor[:, : a.size, : a.size]
    schedule = make_schedule("linear", 1000)
    dtypes = {"float32": None, "fp16 autocast": torch.float16, "bf16 autocast": torch.bfloat16}
    rows, ref = [], None
    for name, dtype in dtypes.items():
        model = den if dtype is None else Autocast(den, dtype)
        run_job(model, image, schedule, a.step, a.steps, device)  # warm-up
        times, res, mem = [], None, None
        for _ in range(a.repeats):
            res, secs, mem = run_job(model, image, schedule, a.step, a.steps, device)
            times.append(secs)
        ref = res.final if ref is None else ref
        med = statistics.median(times)
        rows.append({"variant": name, "seconds": med, "ms_per_step": 1000 * med / a.steps,
                     "steps_per_s": a.steps / med, "peak_mb": mem, "frames": len(res.frames),
                     "metric_rows": len(res.metrics), "psnr_vs_float32": psnr(res.final, ref),
                     "times": times})
        print(f"{name}: {med:.3f} s ({1000 * med / a.steps:.1f} ms/step)", flush=True)
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor()
    res = {"device": str(device), "gpu": gpu, "torch": torch.__version__, "model": a.model,
           "size": a.size, "steps": a.steps, "step": a.step, "repeats": a.repeats, "rows": rows,
           "command": "python bench/gpu.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"# The Restore job on {gpu}", "",
             f"{a.size}x{a.size}, {a.steps} DDIM steps from step {a.step} of 1000, model "
             f"`{a.model}`, frames and per-step metrics included (the page's job); torch "
             f"{torch.__version__}; median of {a.repeats} runs after one warm-up. Command: "
             f"`{res['command']}`.", "",
             "| variant | seconds | ms per step | steps/s | peak MB | frames | PSNR vs float32 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        peak = "n/a" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        lines.append(f"| {r['variant']} | {r['seconds']:.3f} | {r['ms_per_step']:.1f} | "
                     f"{r['steps_per_s']:.1f} | {peak} | {r['frames']} | {r['psnr_vs_float32']:.2f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
