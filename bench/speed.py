"""Speed benchmark: where the time goes, and how many steps are worth paying for.

Usage (from the repository root)::

    .venv/bin/python bench/speed.py            # everything (long on a small CPU)
    .venv/bin/python bench/speed.py --quick    # fewer sizes, repeats, images and steps
    .venv/bin/python bench/speed.py --only samplers tiling   # some sections; the others'
                                                            # earlier results are kept

Sections:

* ``scrubber``: server time to build the Add-noise page's in-browser scrubber (512x512).
* ``denoiser``: one denoiser call (= one sampler step) at 256, 512 and 1024 px: fp32,
  channels_last, bf16 autocast and the 8-bit path at a fixed sigma (``diffusion_core.models.quant``),
  with 1 and 2 threads (CUDA rows when there is a GPU);
  FLOPs per call (``torch.utils.flop_counter``) against this machine's fp32 matmul rate.
* ``samplers``: PSNR against the number of steps for every sampler from a fixed start
  (sigma 25/255 and 100/255) on built-in photos, and the check that a 10-step high-order
  solver lands within 0.3 dB of the 250-step DDIM result.
* ``e2e``: a 256x256 restore with 25 DDIM steps; one step at 1 megapixel.
* ``tiling``: tiled against untiled on a 768x768 picture (seams) and peak memory.

Writes ``bench/results/speed.md`` and ``speed.json`` (date, CPU, threads, load average of
each section: timings on a busy machine are inflated, so read them next to the load).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffusion_core.maths.forward import draw_noise, step_for_sigma  # noqa: E402
from diffusion_core.maths.samplers import SHORT_NAMES, sample, schedule_sigmas  # noqa: E402
from diffusion_core.maths.schedules import make_schedule  # noqa: E402
from diffusion_core.media.samples import load_sample  # noqa: E402
from diffusion_core.models.registry import get_denoiser  # noqa: E402
from diffusion_core.system.cpuinfo import cpu_flags, cpu_model  # noqa: E402
from diffusion_core.tasks.metrics import psnr, ssim  # noqa: E402
from diffusion_core.tasks.restore import restore  # noqa: E402
from diffusion_core.tasks.steps_study import sampler_vs_steps  # noqa: E402
from diffusion_core.tasks.tiling import TiledDenoiser, maybe_tiled  # noqa: E402
from diffusion_core.units import sigma_from_255, to_255  # noqa: E402
from ui.scrubber import encode_image, encode_noise, scrubber_html  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SECTIONS = ["scrubber", "denoiser", "samplers", "e2e", "tiling"]
MODEL = "natural"


# ---------------------------------------------------------------------------- machine


def bf16_support() -> dict:
    f = cpu_flags()
    return {"avx512f": "avx512f" in f, "avx512_bf16": "avx512_bf16" in f,
            "amx_bf16": "amx_bf16" in f, "amx_tile": "amx_tile" in f,
            "avx512_vnni": "avx512_vnni" in f, "app_uses_cpu_bf16": _app_bf16()}


def _app_bf16() -> bool:
    from diffusion_core.maths.precond import cpu_has_fast_bf16

    return cpu_has_fast_bf16()


def model_stamp() -> dict:
    """Which weights were measured (the model can be retrained between runs)."""
    from diffusion_core.models.registry import find_model

    info = find_model(MODEL)
    return {"name": MODEL, "sha256": str(info.card.get("sha256", ""))[:12],
            "training_steps": info.card.get("steps")}


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine() -> dict:
    return {"date": dt.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "bf16": bf16_support(), "load_avg": load()}


# ---------------------------------------------------------------------------- helpers


def timed(fn, sync=None) -> float:
    t0 = time.perf_counter()
    fn()
    if sync is not None:
        sync()
    return time.perf_counter() - t0


def med(xs) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def noisy_photo(size: int, name: str = "astronaut", sigma_255: float = 25.0, seed: int = 0):
    """(clean, y = clean + sigma * n, sigma) with the picture's longest side ``size``."""
    x = load_sample(name, max_side=None, mode="rgb").tensor
    x = resize_to(x, size)
    sigma = sigma_from_255(sigma_255)
    y = x + sigma * draw_noise(x.shape, seed)
    return x, y[None], sigma


def resize_to(x: torch.Tensor, size: int, square: bool = True) -> torch.Tensor:
    """Resize (antialiased bicubic) so the longest side is ``size``; ``square`` crops the
    centre square first."""
    if square:
        h, w = x.shape[-2:]
        s = min(h, w)
        x = x[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    h, w = x.shape[-2:]
    k = size / max(h, w)
    out = torch.nn.functional.interpolate(x[None], size=(round(h * k), round(w * k)),
                                          mode="bicubic", antialias=k < 1, align_corners=False)
    return out[0].clamp(-1, 1)


def fmt(v, nd=1, unit="") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "identical"
    return f"{v:,.{nd}f}{unit}"


def jsonable(o):
    if isinstance(o, float):
        return "nan" if math.isnan(o) else ("inf" if math.isinf(o) else o)
    if isinstance(o, dict):
        return {k: jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    return o


def unjson(o):
    if o in ("inf", "nan"):
        return float(o)
    if isinstance(o, dict):
        return {k: unjson(v) for k, v in o.items()}
    if isinstance(o, list):
        return [unjson(v) for v in o]
    return o


# ---------------------------------------------------------------------------- (a) scrubber


def bench_scrubber(quick: bool) -> dict:
    x, _, _ = noisy_photo(512)
    eps = draw_noise(x.shape, 0)
    sched = make_schedule("linear", 1000)
    n = 5 if quick else 15
    scrubber_html(x, eps, sched)  # warm up (imports, PIL)
    parts = {"encode the picture (PNG)": lambda: encode_image(x),
             "encode the noise (PNG)": lambda: encode_noise(eps),
             "whole scrubber_html": lambda: scrubber_html(x, eps, sched, t0=250)}
    rows = []
    for name, fn in parts.items():
        ts = [timed(fn) for _ in range(n)]
        rows.append({"what": name, "ms_median": 1000 * med(ts), "ms_min": 1000 * min(ts)})
    html = scrubber_html(x, eps, sched, t0=250)
    return {"size": list(x.shape[1:]), "repeats": n, "rows": rows,
            "html_kb": len(html.encode()) / 1024}


# ---------------------------------------------------------------------------- (b, c) denoiser


def matmul_gflops(n: int = 2048, repeats: int = 5, device="cpu") -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else None
    a @ b
    best = min(timed(lambda: a @ b, sync) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def count_flops(den, size: int, device="cpu") -> int:
    from torch.utils.flop_counter import FlopCounterMode

    y = torch.randn(1, 3, size, size, device=device)
    fc = FlopCounterMode(display=False)
    with torch.inference_mode(), fc:
        den(y, 0.2)
    return int(fc.get_total_flops())


def bench_denoiser(quick: bool) -> dict:
    den = get_denoiser(MODEL, "cpu", channels_last=False, cpu_bf16=False)  # plain: the "before"
    den_cl = get_denoiser(MODEL, "cpu", channels_last=True, cpu_bf16=False)  # the layout alone
    threads0 = torch.get_num_threads()
    thread_list = sorted({1, threads0}, reverse=True)
    sizes = [256, 512, 1024]
    repeats = 3 if quick else 5
    variants = {
        "fp32": lambda y: den(y, 0.2),
        "channels_last": lambda y: den_cl(y, 0.2),
        "bf16 autocast": lambda y: _bf16(den, y),
    }
    from diffusion_core.models.quant import Int8Denoiser, int8_supported

    if int8_supported(den)[0]:  # the 8-bit path for one known sigma, built before timing
        den8 = Int8Denoiser(den)
        den8.body(0.2)
        variants["int8 (sigma fixed)"] = lambda y: den8(y, 0.2)
    rows = []
    # the matmul rate: best of many, before and after the denoiser timings (a busy machine
    # gives a low reading in one window and a fair one in another; keep the best)
    mm_runs: dict[int, list[float]] = {th: [] for th in thread_list}

    def measure_matmul():
        for th in thread_list:
            torch.set_num_threads(th)
            mm_runs[th].append(matmul_gflops(repeats=10))
        torch.set_num_threads(threads0)

    measure_matmul()
    with torch.inference_mode():
        for size in sizes:
            _, y, _ = noisy_photo(size)
            ref = den(y, 0.2)
            for th in thread_list:
                names = list(variants)
                reps = repeats
                if quick and size >= 1024:  # the slowest corner: two variants, the default threads
                    if th != threads0:
                        continue
                    names = [k for k in ("fp32", "channels_last", "int8 (sigma fixed)")
                             if k in variants]
                    reps = 2
                torch.set_num_threads(th)
                outs = {k: variants[k](y) for k in names}  # warm-up, and the outputs
                times: dict[str, list[float]] = {k: [] for k in names}
                for _ in range(reps):  # interleaved, so a change in load hits every variant
                    for k in names:
                        times[k].append(timed(lambda k=k: variants[k](y)))
                for k in names:
                    rows.append({"device": "cpu", "size": size, "threads": th, "variant": k,
                                 "ms_median": 1000 * med(times[k]), "ms_min": 1000 * min(times[k]),
                                 "repeats": reps,
                                 "psnr_vs_fp32": psnr(outs[k][0].float(), ref[0])})
                print(json.dumps(rows[-len(names):]), flush=True)
            torch.set_num_threads(threads0)
    if torch.cuda.is_available():
        rows += _cuda_rows(sizes, repeats)
    # (c) FLOPs per call against the measured matmul rate
    flops = {}
    for size in sizes:
        if quick and size > 256:  # fully convolutional: FLOPs scale with the pixels
            flops[size] = flops[256] * (size // 256) ** 2
        else:
            flops[size] = count_flops(den, size)
    measure_matmul()
    mm = {th: max(v) for th, v in mm_runs.items()}
    fl_rows = []
    for size in sizes:
        for th in thread_list:
            r = next((r for r in rows if r["size"] == size and r["threads"] == th
                      and r["variant"] == "fp32" and r["device"] == "cpu"), None)
            if r is None:
                continue
            achieved = flops[size] / (r["ms_median"] / 1000) / 1e9
            best = flops[size] / (r["ms_min"] / 1000) / 1e9
            fl_rows.append({"size": size, "threads": th, "gflop_per_call": flops[size] / 1e9,
                            "ms_median": r["ms_median"], "gflops_median": achieved,
                            "gflops_best": best, "matmul_gflops": mm[th],
                            "ratio_median": achieved / mm[th], "ratio_best": best / mm[th]})
    cuda_mm = matmul_gflops(device="cuda") if torch.cuda.is_available() else None
    return {"rows": rows, "flops": fl_rows, "matmul_gflops": mm, "matmul_runs": mm_runs,
            "cuda_matmul_gflops": cuda_mm,
            "flops_counted_at": [256] if quick else sizes, "bf16": bf16_support()}


def _bf16(den, y):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return den(y, 0.2).float()


def _cuda_rows(sizes, repeats) -> list[dict]:
    den = get_denoiser(MODEL, "cuda")
    den_cl = copy.deepcopy(den).use_channels_last()
    sync = torch.cuda.synchronize
    rows = []

    def half(y):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return den(y, 0.2).float()

    variants = {"fp32": lambda y: den(y, 0.2),
                "channels_last": lambda y: den_cl(y, 0.2),
                "bf16 autocast": half}
    with torch.inference_mode():
        for size in sizes:
            _, y, _ = noisy_photo(size)
            y = y.cuda()
            ref = den(y, 0.2)
            for k, f in variants.items():
                out = f(y)
                sync()
                ts = [timed(lambda f=f: f(y), sync) for _ in range(max(repeats, 10))]
                rows.append({"device": "cuda", "size": size, "threads": None, "variant": k,
                             "ms_median": 1000 * med(ts), "ms_min": 1000 * min(ts),
                             "repeats": len(ts),
                             "psnr_vs_fp32": psnr(out[0].float().cpu(), ref[0].cpu())})
    return rows


# ---------------------------------------------------------------------------- (d) samplers


def bench_samplers(quick: bool) -> dict:
    den = get_denoiser(MODEL, "cpu")
    sched = make_schedule("linear", 1000)
    if quick:
        images, size, steps = ["astronaut", "cat"], 128, [1, 2, 5, 10, 25]
    else:
        images, size, steps = ["astronaut", "cat", "coffee"], 256, [1, 2, 5, 10, 25, 50, 100, 250]
    samplers = ["ddim", "dpmpp_2m", "heun", "ddpm"]
    rows = []
    for name in images:
        x = resize_to(load_sample(name, max_side=None, mode="rgb").tensor, size)
        for s255 in (25, 100):
            step = step_for_sigma(sched, sigma_from_255(s255))
            t0 = time.perf_counter()
            got = sampler_vs_steps(den, x, sched, step, samplers, steps, seed=0,
                                   reference_steps=250)
            wall = time.perf_counter() - t0
            for r in got:
                r.update(image=name, sigma_255=s255, start_step=step, study_wall_s=wall)
            rows += got
            print(f"{name} sigma {s255}: {len(got)} runs in {wall:.0f} s", flush=True)
    checks = []
    for name in images:
        for s255 in (25, 100):
            mine = [r for r in rows if r["image"] == name and r["sigma_255"] == s255]
            for s in ("dpmpp_2m", "heun"):
                r10 = next((r for r in mine if r["sampler"] == s and r["steps_requested"] == 10),
                           None)
                if r10 is None:
                    continue
                delta = r10["psnr"] - r10["reference_psnr"]
                checks.append({"image": name, "sigma_255": s255, "sampler": s,
                               "steps": r10["steps"], "model_calls": r10["model_calls"],
                               "psnr": r10["psnr"], "reference_psnr": r10["reference_psnr"],
                               "reference_steps": r10["reference_steps"], "delta_db": delta,
                               "agreement_db": r10["psnr_vs_reference"],
                               "within_0_3_db": abs(delta) <= 0.3,
                               "agreement_ok": r10["psnr_vs_reference"] >= 35.0})
    spacing = []
    for name in images:
        x = resize_to(load_sample(name, max_side=None, mode="rgb").tensor, size)
        for s255 in (25, 100):
            spacing += spacing_check(den, x, sched, step_for_sigma(sched, sigma_from_255(s255)),
                                     name, s255)
    return {"images": images, "size": size, "steps": steps, "samplers": samplers,
            "rows": rows, "checks": checks, "spacing": spacing}


def spaced_sigmas(kind: str, sched, step: int, n: int) -> torch.Tensor:
    """n noise levels from the start's level down to the schedule's smallest, then 0:
    ``uniform-t`` (what the app uses: evenly spaced timesteps), ``karras`` (rho = 7,
    Karras et al. 2022) or ``log-sigma`` (evenly spaced in log sigma)."""
    if kind == "uniform-t":
        return schedule_sigmas(sched, step - 1, n)[0]
    hi, lo = float(sched.sigmas[step - 1]), float(sched.sigmas[0])
    i = torch.arange(n, dtype=torch.float64) / max(n - 1, 1)
    if kind == "karras":
        s = (hi ** (1 / 7) + i * (lo ** (1 / 7) - hi ** (1 / 7))) ** 7
    else:
        s = torch.exp(math.log(hi) + i * (math.log(lo) - math.log(hi)))
    return torch.cat([s, torch.zeros(1, dtype=torch.float64)]).float()


def spacing_check(den, x, sched, step: int, name: str, s255: int) -> list[dict]:
    """How the choice of noise levels changes a short run (same start, same network)."""
    ref = restore(den, x, sched, step, 250, sampler="ddim", seed=0, keep_frames=False,
                  compute_metrics=False)
    y0 = (ref.start * math.sqrt(1 + float(sched.sigmas[step - 1]) ** 2))[None]
    out = []
    with torch.inference_mode():
        for n in (5, 10):
            for kind in ("uniform-t", "karras", "log-sigma"):
                sig = spaced_sigmas(kind, sched, step, n)
                for smp in ("dpmpp_2m", "ddim"):
                    got = sample(smp, den, y0, sig)[0].float().clamp(-1, 1)
                    out.append({"image": name, "sigma_255": s255, "steps": n, "spacing": kind,
                                "sampler": smp, "psnr": psnr(got, x),
                                "reference_psnr": psnr(ref.final, x),
                                "agreement_db": psnr(got, ref.final)})
    return out


# ---------------------------------------------------------------------------- (e) end to end


def bench_e2e(quick: bool) -> dict:
    den = get_denoiser(MODEL, "cpu", channels_last=False, cpu_bf16=False)
    sched = make_schedule("linear", 1000)
    x = resize_to(load_sample("astronaut", max_side=None, mode="rgb").tensor, 256)
    step = step_for_sigma(sched, sigma_from_255(25))
    threads0 = torch.get_num_threads()
    reps = 1 if quick else 3
    den_cl = get_denoiser(MODEL, "cpu")  # the app's copy: channels-last on a CPU
    rows = []
    configs = [("as the Restore page runs it (frames + metrics; channels-last)", threads0, True,
                den_cl),
               ("as the Restore page runs it, plain layout (before channels-last)", threads0, True,
                den),
               ("compute only", threads0, False, den),
               ("compute only, channels_last", threads0, False, den_cl)]
    if threads0 > 1:
        configs += [("compute only, 1 thread", 1, False, den),
                    ("compute only, 1 thread, channels_last", 1, False, den_cl)]
    for what, th, page_like, d in configs:
        torch.set_num_threads(th)
        ts, res = [], None
        for _ in range(reps):
            t0 = time.perf_counter()
            res = restore(d, x, sched, step, 25, sampler="ddim", seed=0,
                          keep_frames=page_like, compute_metrics=page_like)
            ts.append(time.perf_counter() - t0)
        rows.append({"what": f"256x256, 25 DDIM steps: {what}", "threads": th,
                     "seconds_median": med(ts), "seconds_min": min(ts),
                     "per_step_ms": 1000 * med(ts) / max(res.steps_run, 1),
                     "steps": res.steps_run, "psnr": psnr(res.final, x)})
        print(json.dumps(rows[-1]), flush=True)
    torch.set_num_threads(threads0)
    # the per-step score the page shows: SSIM was skimage's (before), now torch (same number)
    from skimage.metrics import structural_similarity

    a, b = x, res.final
    qa = to_255(a).byte().permute(1, 2, 0).numpy()
    qb = to_255(b).byte().permute(1, 2, 0).numpy()
    t_sk = [timed(lambda: structural_similarity(qa, qb, channel_axis=2, data_range=255))
            for _ in range(5)]
    t_ours = [timed(lambda: ssim(a, b)) for _ in range(5)]
    metric = {"ssim_skimage_ms": 1000 * med(t_sk), "ssim_torch_ms": 1000 * med(t_ours),
              "ssim_skimage": float(structural_similarity(qa, qb, channel_axis=2, data_range=255)),
              "ssim_torch": ssim(a, b)}
    print(json.dumps(metric), flush=True)
    # one step at 1 megapixel, as the page would run it (tiled above 512x512) and untiled
    _, y, sigma = noisy_photo(1024)
    one_mp = [("untiled", threads0, den),
              ("tiled (maybe_tiled: 512 tiles, 64 overlap)", threads0, maybe_tiled(den, 1024, 1024)),
              ("untiled, channels_last", threads0, den_cl)]
    if threads0 > 1:
        one_mp.append(("untiled, 1 thread, channels_last", 1, den_cl))
    with torch.inference_mode():
        for what, th, d in one_mp:
            torch.set_num_threads(th)
            ts = [timed(lambda d=d: d(y, sigma)) for _ in range(reps)]
            rows.append({"what": f"one step at 1024x1024 (1 MP), {what}", "threads": th,
                         "seconds_median": med(ts), "seconds_min": min(ts),
                         "per_step_ms": 1000 * med(ts), "steps": 1, "psnr": None})
            print(json.dumps(rows[-1]), flush=True)
    torch.set_num_threads(threads0)
    return {"rows": rows, "metric": metric}


# ---------------------------------------------------------------------------- (f) tiling

_CHILD = r"""
import json, resource, sys, time, torch
from diffusion_core.models.registry import load_denoiser
from diffusion_core.tasks.tiling import TiledDenoiser
size, tile, overlap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
den = load_denoiser("natural")
y = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 0.6
d = den if tile <= 0 else TiledDenoiser(den, tile, overlap)
load_peak = status("VmHWM")
try:  # reset the high-water mark (Linux >= 4.0) so that it measures the call alone
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
base = status("VmRSS")
t0 = time.perf_counter()
with torch.inference_mode():
    d(y, 0.2)
dt = time.perf_counter() - t0
peak = status("VmHWM")
print(json.dumps({"load_peak_mb": load_peak, "baseline_mb": base, "peak_mb": peak,
                  "call_mb": peak - base, "peak_reset": reset, "seconds": dt,
                  "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child_peak(size: int, tile: int, overlap: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(size), str(tile), str(overlap)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_tiling(quick: bool) -> dict:
    den = get_denoiser(MODEL, "cpu")
    x, y, sigma = noisy_photo(768)
    rows = []
    with torch.inference_mode():
        full = den(y, sigma)
        for tile, overlap in ((512, 64), (256, 32)):
            tiled = TiledDenoiser(den, tile, overlap)(y, sigma)
            err = (tiled - full).abs().mean(dim=(0, 1))[4:-4, 4:-4]
            rows.append({"tile": tile, "overlap": overlap,
                         "psnr_tiled_vs_untiled": psnr(tiled[0], full[0]),
                         "psnr_tiled": psnr(tiled[0], x), "psnr_untiled": psnr(full[0], x),
                         "worst_row_or_col_err": float(max(err.mean(0).max(), err.mean(1).max())),
                         "mean_abs_err": float(err.mean())})
    mem = []
    for tile, overlap in ((0, 0), (512, 64), (256, 32)):
        r = child_peak(768, tile, overlap)
        r.update(size=768, tile=tile or None, overlap=overlap or None)
        mem.append(r)
        print(json.dumps(r), flush=True)
    return {"size": 768, "sigma_255": 25, "rows": rows, "memory": mem}


# ---------------------------------------------------------------------------- markdown


def _load_line(sec: dict) -> str:
    a, b = sec.get("load_before", []), sec.get("load_after", [])
    m = sec.get("model") or {}
    return (f"*Measured {sec.get('date', '?')}{' (quick)' if sec.get('quick') else ''} with "
            f"{sec.get('torch_threads', '?')} torch thread(s), model weights "
            f"{m.get('sha256', '?')} ({m.get('training_steps', '?')} training steps); load average "
            f"(1/5/15 min) {' / '.join(map(str, a))} before, {' / '.join(map(str, b))} after, on "
            f"{sec.get('cpu_count', '?')} CPUs{_load_verdict(a, sec.get('cpu_count'))}.*")


def _load_verdict(before: list, cpus) -> str:
    """A 1-minute load at or below ~1.3 before a section means the benchmark had the machine
    to itself (its own threads make up the load); more means other work shared the CPUs."""
    if not before or not cpus:
        return ""
    if before[0] <= 1.3:
        return ": a quiet machine (no other work running)"
    return ": other work shared the CPUs, so timings are inflated"


def markdown(data: dict) -> str:
    m = data.get("machine", {})
    bf = m.get("bf16", {})
    out = ["# Speed benchmark", "",
           f"CPU **{m.get('cpu')}** ({m.get('cpu_count')} cores), torch {m.get('torch')} "
           f"({m.get('torch_threads')} threads by default), Python {m.get('python')}"
           + (f", GPU {m['cuda']}" if m.get("cuda") else ", no GPU") + ". "
           f"bf16 in hardware: avx512_bf16 **{'yes' if bf.get('avx512_bf16') else 'no'}**, "
           f"AMX **{'yes' if bf.get('amx_bf16') else 'no'}** (avx512f "
           f"{'yes' if bf.get('avx512f') else 'no'}, avx512_vnni "
           f"{'yes' if bf.get('avx512_vnni') else 'no'}); so the app's CPU copy of the model "
           f"runs {'with' if bf.get('app_uses_cpu_bf16') else 'without'} bf16 autocast "
           "(`get_denoiser`: on only where torch sees AMX or AVX512-BF16) and channels-last. "
           f"Model `{MODEL}`. "
           "Written by `bench/speed.py`; every section says its load average.", ""]
    S = data.get("sections", {})
    if "scrubber" in S:
        s = S["scrubber"]
        out += ["## (a) Add-noise page: building the in-browser scrubber", "", _load_line(s), "",
                f"{s['size'][1]}x{s['size'][0]} picture, {s['repeats']} repeats; the page sends "
                f"{s['html_kb']:.0f} kB of HTML once, then every slider move runs in the browser.", "",
                "| step | median | best |", "|---|---|---|"]
        out += [f"| {r['what']} | {fmt(r['ms_median'])} ms | {fmt(r['ms_min'])} ms |"
                for r in s["rows"]]
        out.append("")
    if "denoiser" in S:
        s = S["denoiser"]
        out += ["## (b) One denoiser call (one sampler step)", "", _load_line(s), "",
                "Median (best) of interleaved repeats; the last column is the output's PSNR "
                "against the fp32 output (identical means bit-for-bit at 8 bits).", "",
                "| device | size | threads | variant | median | best | PSNR vs fp32 |",
                "|---|---|---|---|---|---|---|"]
        for r in s["rows"]:
            out.append(f"| {r['device']} | {r['size']}² | {r['threads'] or '–'} | {r['variant']} | "
                       f"{fmt(r['ms_median'], 0)} ms | {fmt(r['ms_min'], 0)} ms | "
                       f"{fmt(r['psnr_vs_fp32'], 1, ' dB')} |")
        out += ["", "## (c) FLOPs per step against this machine's matmul rate", "", _load_line(s), "",
                "FLOPs from `torch.utils.flop_counter.FlopCounterMode` (counted at "
                + ", ".join(f"{v}²" for v in s["flops_counted_at"])
                + "; other sizes scale with the pixels), divided by the fp32 time above; the "
                "matmul rate is a 2048x2048 fp32 matmul in the same run (best of 10, measured "
                "before and after the denoiser timings: "
                + "; ".join(f"{th} thread{'s' if int(th) > 1 else ''}: "
                            + " / ".join(f"{v:.0f}" for v in runs) + " GFLOP/s"
                            for th, runs in s.get("matmul_runs", {}).items()) + ").", "",
                "| size | threads | GFLOP per call | achieved (median) | achieved (best) | "
                "matmul | ratio (median / best) |", "|---|---|---|---|---|---|---|"]
        for r in s["flops"]:
            out.append(f"| {r['size']}² | {r['threads']} | {fmt(r['gflop_per_call'])} | "
                       f"{fmt(r['gflops_median'])} GFLOP/s | {fmt(r['gflops_best'])} GFLOP/s | "
                       f"{fmt(r['matmul_gflops'])} GFLOP/s | {100 * r['ratio_median']:.0f} % / "
                       f"{100 * r['ratio_best']:.0f} % |")
        if s.get("cuda_matmul_gflops"):
            out.append(f"\nCUDA matmul: {s['cuda_matmul_gflops']:.0f} GFLOP/s.")
        out.append("")
    if "samplers" in S:
        out += _samplers_md(S["samplers"])
    if "e2e" in S:
        s = S["e2e"]
        out += ["## (e) End to end", "", _load_line(s), "",
                "| what | threads | median | best | per step | PSNR vs original |",
                "|---|---|---|---|---|---|"]
        for r in s["rows"]:
            out.append(f"| {r['what']} | {r['threads']} | {fmt(r['seconds_median'], 2)} s | "
                       f"{fmt(r['seconds_min'], 2)} s | {fmt(r['per_step_ms'], 0)} ms | "
                       f"{fmt(r['psnr'], 2, ' dB')} |")
        m = s.get("metric")
        if m:
            out += ["", f"SSIM of one 256x256 frame (the Restore page scores every step): "
                    f"skimage {fmt(m['ssim_skimage_ms'], 1)} ms → ours (torch, running sums) "
                    f"{fmt(m['ssim_torch_ms'], 1)} ms, same value ({m['ssim_skimage']:.6f} vs "
                    f"{m['ssim_torch']:.6f})."]
        out.append("")
    if "tiling" in S:
        s = S["tiling"]
        out += ["## (f) Tiling: 768x768, one denoiser call at sigma 25/255", "", _load_line(s), "",
                "| tile / overlap | tiled vs untiled | tiled vs original | untiled vs original | "
                "worst row/column error | mean abs error |", "|---|---|---|---|---|---|"]
        for r in s["rows"]:
            out.append(f"| {r['tile']} / {r['overlap']} | {fmt(r['psnr_tiled_vs_untiled'], 1, ' dB')} | "
                       f"{fmt(r['psnr_tiled'], 2, ' dB')} | {fmt(r['psnr_untiled'], 2, ' dB')} | "
                       f"{r['worst_row_or_col_err']:.4f} | {r['mean_abs_err']:.4f} |")
        out += ["", "Peak resident memory (`VmHWM`) of a fresh process that loads the model "
                "and makes the one call; the high-water mark is reset after loading "
                "(`/proc/self/clear_refs`) so that \"peak during the call\" is the call's own. "
                "The child processes use torch's default threads. (`ru_maxrss` is not used here: a child "
                "started from a big process inherits the parent's resident size at exec in it.)", "",
                "| run | peak while loading | resident before the call | peak during the call | "
                "the call adds | call time |", "|---|---|---|---|---|---|"]
        for r in s["memory"]:
            what = "untiled" if not r.get("tile") else f"tiles {r['tile']} / {r['overlap']}"
            if "error" in r:
                out.append(f"| {what} | failed: {r['error']} | | | | |")
            else:
                out.append(f"| {what} | {r['load_peak_mb']:.0f} MB | {r['baseline_mb']:.0f} MB | "
                           f"{r['peak_mb']:.0f} MB{'' if r.get('peak_reset') else ' (not reset)'} | "
                           f"{r['call_mb']:.0f} MB | {r['seconds']:.1f} s |")
        out.append("")
    return "\n".join(out)


def _samplers_md(s: dict) -> list[str]:
    rows = s["rows"]
    out = ["## (d) Samplers: quality against the number of steps", "", _load_line(s), "",
           f"Pictures {', '.join(s['images'])} at {s['size']} px (centre square), the same noise "
           "(seed 0) for every run. PSNR against the original, mean over the pictures; "
           "\"agreement\" is the PSNR between the run's output and the 250-step DDIM output "
           "from the same start (a start k noise steps from the clean picture allows at most k "
           "steps, so 100 and 250 are capped there). Model calls in brackets.", ""]
    for s255 in (25, 100):
        mine = [r for r in rows if r["sigma_255"] == s255]
        if not mine:
            continue
        steps = sorted({r["steps"] for r in mine})
        start = mine[0]["start_step"]
        noisy = statistics.mean({r["image"]: r["noisy_psnr"] for r in mine}.values())
        ref = statistics.mean({r["image"]: r["reference_psnr"] for r in mine}.values())
        out += [f"### Start: sigma {s255}/255 (noise step {start}); noisy input {noisy:.2f} dB, "
                f"{mine[0]['reference_steps']}-step DDIM {ref:.2f} dB", "",
                "| sampler | " + " | ".join(f"{k} step{'s' if k > 1 else ''}" for k in steps) + " |",
                "|---|" + "---|" * len(steps)]
        for smp in s["samplers"]:
            cells = []
            for k in steps:
                rs = [r for r in mine if r["sampler"] == smp and r["steps"] == k]
                if rs:
                    p = statistics.mean(r["psnr"] for r in rs)
                    a = [r["psnr_vs_reference"] for r in rs]
                    a = float("inf") if all(math.isinf(v) for v in a) else statistics.mean(
                        v for v in a if not math.isinf(v))
                    cells.append(f"{p:.2f} dB / {fmt(a, 1)} ({rs[0]['model_calls']})")
                else:
                    cells.append("")
            out.append(f"| {SHORT_NAMES.get(smp, smp)} | " + " | ".join(cells) + " |")
        out += ["", "Cells: PSNR vs original / agreement with the 250-step DDIM run in dB "
                "(model calls).", ""]
        out += ["Wall time of each run (seconds, mean over the pictures):", "",
                "| sampler | " + " | ".join(str(k) for k in steps) + " |",
                "|---|" + "---|" * len(steps)]
        for smp in s["samplers"]:
            cells = []
            for k in steps:
                rs = [r["seconds"] for r in mine if r["sampler"] == smp and r["steps"] == k]
                cells.append(f"{statistics.mean(rs):.1f}" if rs else "")
            out.append(f"| {SHORT_NAMES.get(smp, smp)} | " + " | ".join(cells) + " |")
        out.append("")
    if s.get("checks"):
        out += ["### Check: 10 steps of a high-order solver against 250-step DDIM", "",
                "Target: within 0.3 dB of the 250-step DDIM result's PSNR and at least 35 dB "
                "agreement between the two outputs.", "",
                "| picture | sigma | sampler | steps (calls) | PSNR | 250-step DDIM | "
                "difference | agreement | met |", "|---|---|---|---|---|---|---|---|---|"]
        for c in s["checks"]:
            ok = c["within_0_3_db"] and c["agreement_ok"]
            out.append(f"| {c['image']} | {c['sigma_255']}/255 | {SHORT_NAMES.get(c['sampler'])} | "
                       f"{c['steps']} ({c['model_calls']}) | {c['psnr']:.2f} dB | "
                       f"{c['reference_psnr']:.2f} dB ({c['reference_steps']} steps) | "
                       f"{c['delta_db']:+.2f} dB | {fmt(c['agreement_db'], 1, ' dB')} | "
                       f"{'yes' if ok else 'no'} |")
        out.append("")
    if s.get("spacing"):
        out += ["### Which noise levels to visit: the same solvers on other spacings", "",
                "DDPM and DDIM visit evenly spaced *timesteps* (\"uniform-t\"). The same start "
                "and network with the levels spaced as in Karras et al. (rho = 7) or evenly in "
                "log sigma; difference to the 250-step DDIM PSNR / agreement with it, mean over "
                "the pictures. Because of this table the app (``restore(spacing=\"auto\")``) "
                "runs DPM-Solver++ and Heun on the Karras levels since 2026-11-30 (the tables "
                "above were measured with it when their date is later than that change).", "",
                "| sigma | steps | spacing | DPM-Solver++ | DDIM |", "|---|---|---|---|---|"]
        sp = s["spacing"]
        for s255 in (25, 100):
            for n in (5, 10):
                for kind in ("uniform-t", "karras", "log-sigma"):
                    cells = []
                    for smp in ("dpmpp_2m", "ddim"):
                        rs = [r for r in sp if r["sigma_255"] == s255 and r["steps"] == n
                              and r["spacing"] == kind and r["sampler"] == smp]
                        if not rs:
                            cells.append("")
                            continue
                        d = statistics.mean(r["psnr"] - r["reference_psnr"] for r in rs)
                        a = statistics.mean(r["agreement_db"] for r in rs)
                        worst = max(abs(r["psnr"] - r["reference_psnr"]) for r in rs)
                        cells.append(f"{d:+.2f} dB (worst {worst:.2f}) / {a:.1f} dB")
                    out.append(f"| {s255}/255 | {n} | {kind} | " + " | ".join(cells) + " |")
        out.append("")
    return out


# ---------------------------------------------------------------------------- main

RUNNERS = {"scrubber": bench_scrubber, "denoiser": bench_denoiser, "samplers": bench_samplers,
           "e2e": bench_e2e, "tiling": bench_tiling}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short version (minutes, not hours)")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    ap.add_argument("--out", default=str(RESULTS / "speed"), help="output path without suffix")
    ap.add_argument("--fresh", action="store_true",
                    help="do not keep other sections' earlier results")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (default: torch's own choice); the 'denoiser' and "
                         "'e2e' sections still compare 1 thread with the default")
    a = ap.parse_args(argv)
    meta = machine()  # before --threads: the default thread count
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {"machine": meta, "sections": {}}
    js = out.with_suffix(".json")
    if js.exists() and not a.fresh:
        try:
            data["sections"] = unjson(json.loads(js.read_text())).get("sections", {})
        except (OSError, ValueError):
            pass
    for name in a.only or SECTIONS:
        print(f"\n=== {name} === load average {load()}", flush=True)
        before, t0 = load(), time.perf_counter()
        res = RUNNERS[name](a.quick)
        res.update(date=dt.datetime.now().isoformat(timespec="seconds"), quick=a.quick,
                   load_before=before, load_after=load(), cpu_count=os.cpu_count(),
                   torch_threads=torch.get_num_threads(), model=model_stamp(),
                   section_seconds=time.perf_counter() - t0)
        data["sections"][name] = res
        js.write_text(json.dumps(jsonable(data), indent=1))  # after every section
        out.with_suffix(".md").write_text(markdown(data) + "\n")
    print()
    print(markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
