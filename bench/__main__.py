"""`make bench` = `python -m bench`: every benchmark, printing tables and writing
bench/results/*.md and *.json.

    python -m bench                 # everything (long: BM3D alone is ~100 s per megapixel)
    python -m bench --only denoise  # one part
    python -m bench --quick         # fewer images, for a smoke run (writes *_quick files)

Parts: denoise, digits, generate (the conditional models: mnist, fashion, doodles,
digits_cond), speed, app, load, live (what watching a run costs, bench/live_cost.py), noise
(what slows a run on every core), stop (how soon Stop answers), preset, kill, inputs, toy2d,
repair, inpaint, class (a class through nginx, deploy/), estimates (the pages' run-time
estimates against measured runs), lesson (the Lesson page's scene-to-visual times, first
visit and warm), web (Create in the browser: speed, the guidance knob, a class in browser
mode, bench/web.py) (README.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "testsets"
RESULTS = ROOT / "bench" / "results"


def run(cmd: list[str]) -> int:
    print("\n$ " + " ".join(cmd), flush=True)
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.call(cmd, cwd=ROOT, env=env)


def denoise(quick: bool) -> int:
    rc = 0
    py = sys.executable
    files = []
    for name, sigmas in (("CBSD68", ["15", "25", "50"]), ("Set12", ["15", "25", "50"])):
        data = SHARED / name
        if not data.is_dir():
            print(f"skipped {name}: {data} not found")
            continue
        out = RESULTS / f"denoise_{name.lower()}.json"
        cmd = [py, "-m", "diffusion_core", "evaluate", "denoise", "--model", "natural",
               "--data", str(data), "--sigma", *sigmas, "--baselines", "bm3d,nlm",
               "--json", str(out), "--baseline-cache", str(RESULTS / "baseline_cache.json"),
               "--int8"]
        if quick:
            cmd += ["--max-images", "3"]
            cmd[cmd.index("--json") + 1] = str(RESULTS / f"denoise_{name.lower()}_quick.json")
        rc |= run(cmd)
        if not quick:
            files.append(out)
    if files:
        from diffusion_core.tasks.evaluate import update_card

        update_card(ROOT / "models" / "natural", files)
        print("updated models/natural/card.json from", ", ".join(str(f) for f in files))
    return rc


def digits(quick: bool) -> int:
    out = RESULTS / "digits_check.json"
    rc = run([sys.executable, "-m", "diffusion_core", "evaluate", "digits",
              "--n", "200" if quick else "1000", "--json", str(out)])
    if not quick and out.exists():
        from diffusion_core.tasks.evaluate import update_card

        update_card(ROOT / "models" / "digits", [out])
    return rc


#: the conditional models the generate part judges, each against its world's real pictures
GENERATE_MODELS = ("mnist", "fashion", "doodles", "digits_cond")
#: results files named otherwise than world_<model>: digits_cond keeps its earlier file's name
RESULT_STEMS = {"digits_cond": "digits_cond"}


def generate(quick: bool, models: tuple[str, ...] = GENERATE_MODELS) -> int:
    """One table per conditional model (bench/results/world_<model>.md; digits_cond.md): drawn
    as asked at w = 0, 1, 3, realism, near-copies, speed (diffusion_core/training/worlds_check)."""
    if not (ROOT.parent / "shared" / "data" / "gen").is_dir():
        print("skipped generate: ../shared/data/gen not found (the judges train on it)")
        return 0
    rc = 0
    for name in models:
        stem = RESULT_STEMS.get(name, f"world_{name}")
        out = RESULTS / (f"{stem}_quick.json" if quick else f"{stem}.json")
        cmd = [sys.executable, "-m", "diffusion_core", "evaluate", "world", "--model", name,
               "--steps", "20", "--json", str(out)]
        if quick:
            cmd += ["--per-class", "10", "--n", "40", "--c2st", "200"]
        code = run(cmd)
        rc |= code if code != 1 else 0  # 1 = ran, some acceptance figure not met (in the table)
        if not quick and out.exists():
            from diffusion_core.tasks.evaluate import update_card

            update_card(ROOT / "models" / name, [out])
    return rc


def script(name: str, quick_args: tuple[str, ...] = (), args: tuple[str, ...] = ()):
    def f(quick: bool) -> int:
        p = ROOT / "bench" / name
        if not p.exists():
            print(f"skipped: {p} not present")
            return 0
        return run([sys.executable, str(p), *(quick_args if quick else args)])

    return f


PARTS = {
    "denoise": denoise,
    "digits": digits,
    "generate": generate,
    "create_speed": script("world_speed.py", ("--reps", "1", "--threads", "2",
                                              "--out", str(RESULTS / "world_speed_quick.md"))),
    "speed": script("speed.py", ("--quick", "--out", str(RESULTS / "speed_quick"))),
    "toy2d": script("toy2d_seeds.py", ("--seeds", "2", "--steps", "300",
                                       "--out", str(RESULTS / "toy2d_quick"))),
    "repair": script("repair_bench.py", ("--images", "astronaut", "--size", "96", "--steps", "10",
                                         "--out", str(RESULTS / "repair_quick.md"))),
    "inpaint": script("generate_inpaint.py", ("--images", "1", "--samples", "2", "--steps", "10",
                                              "--seeds", "2", "--gen-steps", "4",
                                              "--out", str(RESULTS / "generate_inpaint_quick"))),
    "app": script("app_bench.py", ("--quick", "--out", str(RESULTS / "app_quick"))),
    "estimates": script("estimates.py", ("--repeats", "1", "--out", str(RESULTS / "estimates_quick"))),
    "load": script("load_bench.py", ("--config", "4x128x3", "--out", str(RESULTS / "load_quick.md"))),
    "live": script("live_cost.py",
                   ("--threads", "1", "--reps", "1", "--out", str(RESULTS / "live_cost_quick")),
                   ("--threads", "2", "1", "auto", "--capability", "default", "avx2")),
    "stop": script("stop_latency.py", ("--threads", "1", "--reps", "2",
                                       "--out", str(RESULTS / "stop_latency_quick")),
                   ("--threads", "2", "1")),
    "noise": script("thread_noise.py", ("--size", "128", "--reps", "1",
                                        "--out", str(RESULTS / "thread_noise_quick"))),
    "class": script("class_bench.py", ("--sessions", "4", "--steps", "3",
                                       "--out", str(RESULTS / "class_quick.md"))),
    "web": script("web.py", ("--quick", "--out", str(RESULTS / "web_quick"))),
    "preset": script("train_preset.py", ("--steps", "300", "--n", "200")),
    "inputs": script("bad_inputs.py"),
    "kill": script("train_kill.py", ("--overrides", '{"steps": 600}',
                                     "--out", str(RESULTS / "train_kill_quick"))),
    "lesson": script("lesson.py", ("--reps", "2", "--out", str(RESULTS / "lesson_quick"))),
}


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--only", nargs="+", choices=sorted(PARTS))
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    rc = 0
    for name in a.only or PARTS:
        print(f"\n===== {name} =====", flush=True)
        rc |= PARTS[name](a.quick)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
