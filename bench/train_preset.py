"""Train-page presets, timed end to end through the page's own code path.

Starts the preset with ``diffusion_core.jobs.train.start_training`` (the background job the
Train page runs, with its thread choice), waits for it, and then runs the digits classifier
check on the model it exported. Writes bench/results/train_preset.{md,json}.

    python bench/train_preset.py                 # the "digits" preset (a few minutes)
    python bench/train_preset.py --steps 300     # a shorter smoke run (not the preset)
    python bench/train_preset.py --preset fashion   # a world preset (conditional): the share
                                                    # drawn as asked at w = 3 (needs ../shared)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


def load_avg() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="digits")
    ap.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    ap.add_argument("--n", type=int, default=1000, help="samples for the classifier check")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="lab-preset-")
    os.environ["DIFFUSION_LAB_USER_MODELS"] = tmp
    import torch

    from diffusion_core.jobs.train import start_training
    from diffusion_core.training.digits_check import evaluate_digits
    from diffusion_core.training.presets import PRESETS
    from diffusion_core.training.worlds import WORLDS
    from diffusion_core.training.worlds_check import asked_shares

    p = PRESETS[a.preset]
    overrides = {"steps": a.steps} if a.steps else None
    before = load_avg()
    t0 = time.perf_counter()
    res = start_training("bench-preset", a.preset, overrides, conditional=p.dataset in WORLDS)
    if not res.ok:
        print("could not start:", res.message)
        return 1
    job = res.job
    last = -1
    while not job.wait(5.0):
        snap = job.snapshot(max_points=2)
        if snap.get("step", 0) // 500 != last:
            last = snap.get("step", 0) // 500
            print(f"  step {snap.get('step')} / {snap.get('total')} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    wall = time.perf_counter() - t0
    snap = job.snapshot(max_points=2)
    after = load_avg()
    if snap.get("error"):
        print("job failed:", snap["error"])
        return 1
    out = {"preset": a.preset, "label": p.label, "steps": job.cfg.steps, "batch": job.cfg.batch,
           "threads": job.cfg.threads, "torch_threads_default": torch.get_num_threads(),
           "cpus": os.cpu_count(), "wall_s": round(wall, 1), "load_before": before,
           "load_after": after, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if p.dataset == "digits":
        check = evaluate_digits(model="bench-preset", n=a.n)
        out["check"] = {k: check[k] for k in ("mean_confidence", "min_class_share", "passes",
                                              "class_shares", "seconds") if k in check}
    if p.dataset in WORLDS:
        out["asked_w3"] = asked_shares("bench-preset", 3.0, n_per_class=a.n // 10)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = ("" if p.dataset == "digits" else f"_{a.preset}") + (f"_{a.steps}" if a.steps else "")
    (RESULTS / f"train_preset{suffix}.json").write_text(json.dumps(out, indent=2))
    lines = ["# Train page: preset timing", "",
             f"*Measured {out['date']} by `python bench/train_preset.py"
             f"{' --preset ' + a.preset if a.preset != 'digits' else ''}"
             f"{' --steps ' + str(a.steps) if a.steps else ''}`: the Train page's background "
             f"job ({out['threads']} training thread(s) on {out['cpus']} CPUs), load average "
             f"(1/5/15 min) {before} before, {after} after.*", "",
             "| preset | steps × batch | wall time | classifier mean confidence | smallest class "
             "| check |", "|---|---|---|---|---|---|"]
    c = out.get("check", {})
    if "asked_w3" in out:
        s = out["asked_w3"]
        lines[-2:] = ["| preset | steps × batch | wall time | drawn as asked at w = 3 (judge on "
                      "real test) | worst class | goal |", "|---|---|---|---|---|---|",
                      f"| {p.label} | {out['steps']} × {out['batch']} | {wall:.0f} s "
                      f"({wall / 60:.1f} min) | {s['mean']:.1%} ({s['judge_accuracy']:.1%}) | "
                      f"{min(s['shares']):.0%} | ≤ 5 min, ≥ 80 %: "
                      f"{'met' if wall <= 300 and s['mean'] >= 0.8 else 'NOT met'} |"]
    else:
        lines.append(f"| {p.label} | {out['steps']} × {out['batch']} | {wall:.0f} s "
                 f"({wall / 60:.1f} min) | {c.get('mean_confidence', float('nan')):.3f} | "
                 f"{100 * c.get('min_class_share', float('nan')):.1f} % | "
                     f"{'passes' if c.get('passes') else 'fails'} |")
    md = "\n".join(lines) + "\n"
    (RESULTS / f"train_preset{suffix}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
