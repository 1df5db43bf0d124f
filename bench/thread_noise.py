"""What slows a restore that uses every core, without a browser: the Restore page's default
run (astronaut, natural model, 512 px, DDIM 25 steps from the typical noise step, seed 0) in
one process, timed (the sampling alone, as the CLI reports it) in four settings, back to back:

* **main thread**: ``restore()`` in the main thread, as ``python -m diffusion_core restore``;
* **page job**: the same run as the page starts it, a :class:`RestoreJob` in its own thread;
* **next to a busy process**: main thread, while another process computes 20 ms in every
  100 ms (like a browser redrawing);
* **next to a busy Python thread**: main thread, while a thread of this process does that.

Usage: ``flock /tmp/bench.lock .venv/bin/python -m bench.thread_noise --threads 2``
(writes bench/results/thread_noise.md and .json). See bench/results/live_cost.md for what
watching a run in Chromium costs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.live_cost import page_defaults  # noqa: E402
from diffusion_core.jobs.restore import RestoreJob  # noqa: E402
from diffusion_core.maths.schedules import make_schedule  # noqa: E402
from diffusion_core.media.decode import load_image  # noqa: E402
from diffusion_core.models.registry import get_denoiser  # noqa: E402
from diffusion_core.system.threads import ENV_THREADS  # noqa: E402
from diffusion_core.tasks.restore import restore  # noqa: E402

OUT = ROOT / "bench" / "results" / "thread_noise"
BUSY_S, PERIOD_S = 0.02, 0.1


def busy_loop(stop) -> None:
    """Compute BUSY_S out of every PERIOD_S seconds until ``stop`` is set."""
    while not stop.is_set():
        t = time.perf_counter()
        while time.perf_counter() - t < BUSY_S:
            sum(range(1000))
        time.sleep(PERIOD_S - BUSY_S)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.thread_noise", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    os.environ[ENV_THREADS] = str(a.threads)  # the page job's plan
    torch.set_num_threads(a.threads)
    d = page_defaults()
    den = get_denoiser(d["model"], "cpu")
    img = load_image(d["image"], max_side=a.size).tensor
    sch = make_schedule(d["schedule"], d["T"])
    args = (den, img, sch, d["t"], d["steps"])

    def main_thread() -> float:
        with torch.inference_mode():
            return restore(*args, sampler=d["sampler"], seed=d["seed"], device="cpu").seconds

    def page_job() -> float:
        job = RestoreJob(*args, sampler=d["sampler"], seed=d["seed"], device="cpu", grace_s=600)
        assert job.start().wait(600) and job.state == "done", job.error
        return job.result.seconds

    def next_to(kind: str) -> float:
        stop = mp.Event() if kind == "process" else threading.Event()
        other = (mp.Process(target=busy_loop, args=(stop,)) if kind == "process"
                 else threading.Thread(target=busy_loop, args=(stop,)))
        other.start()
        try:
            return main_thread()
        finally:
            stop.set()
            other.join()

    settings = {"main thread": main_thread, "page job (its own thread)": page_job,
                "main thread, next to a busy process": lambda: next_to("process"),
                "main thread, next to a busy Python thread": lambda: next_to("thread")}
    main_thread()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in settings}
    for r in range(a.reps):  # interleaved, so that a slow spell of the machine hits all alike
        for name, f in settings.items():
            times[name].append(f())
            print(f"rep {r + 1}: {name}: {times[name][-1]:.2f} s", flush=True)
    base = statistics.median(times["main thread"])
    rows = [f"| {name} | {statistics.median(v):.2f} | {min(v):.2f}–{max(v):.2f} "
            f"| {statistics.median(v) / base:.2f}× |" for name, v in times.items()]
    a.out.with_suffix(".json").write_text(json.dumps(
        {"threads": a.threads, "size": a.size, "steps": d["steps"], "reps": a.reps,
         "seconds": times, "load_avg": os.getloadavg()}, indent=1))
    a.out.with_suffix(".md").write_text(
        "# What slows a restore on every core, without a browser\n\n"
        f"`flock /tmp/bench.lock .venv/bin/python -m bench.thread_noise --threads {a.threads}` "
        f"(bench/thread_noise.py): the Restore page's default run at {a.size} px, "
        f"{d['sampler']} {d['steps']} steps, {a.threads} torch threads, sampling seconds, "
        f"{a.reps} repetitions interleaved; the busy neighbour computes {BUSY_S * 1000:.0f} ms "
        f"in every {PERIOD_S * 1000:.0f} ms. {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f} at the end.\n\n"
        "| setting | median (s) | range (s) | against the main thread |\n|---|---|---|---|\n"
        + "\n".join(rows) + "\n")
    print(f"wrote {a.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
