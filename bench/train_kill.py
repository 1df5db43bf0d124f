"""kill -9 during a Train-page job, then resume it: what is lost and what comes back.

A child process runs the Train page's background job
(``diffusion_core.jobs.train.start_training``, the same code the page calls) and prints its
step as it goes; the parent kills it with SIGKILL at a chosen point, checks the checkpoint
left on disk (readable, never half written, at most one checkpoint interval behind the last
step the child reported), resumes the run with
``diffusion_core.jobs.train.resume_training`` (what the page's "Resume" button does) and lets
it finish.

    python bench/train_kill.py                     # the full "digits" preset, killed at 55 %
    python bench/train_kill.py --kill-at 0.3

tests/test_train_kill.py runs a tiny version of the same function.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


def _child(name: str, preset: str, overrides: dict) -> int:
    """Run a Train-page job and print ``step N`` lines until it ends (or is killed)."""
    from diffusion_core.jobs.train import start_training

    res = start_training(name, preset, overrides or None)
    if not res.ok:
        print("error", res.message, flush=True)
        return 1
    job, last = res.job, -1
    while not job.wait(0.02):
        s = job.step
        if s != last:
            print(f"step {s}", flush=True)
            last = s
    print(f"step {job.step}", flush=True)
    print(f"state {job.state}", flush=True)
    return 0


def kill_and_resume(models_dir: str | Path, preset: str = "digits",
                    overrides: dict | None = None, kill_at: float = 0.55,
                    name: str = "killed", timeout_s: float = 900) -> dict:
    """Start a job in a child process, SIGKILL it once it has passed ``kill_at`` of its
    steps, then resume it in this process. Returns the figures (see the module doc)."""
    from diffusion_core.jobs.train import resume_training
    from diffusion_core.training.presets import build_config, effective_settings
    from diffusion_core.training.runs import list_runs

    models_dir = Path(models_dir)
    os.environ["DIFFUSION_LAB_USER_MODELS"] = str(models_dir)
    env = dict(os.environ, PYTHONPATH=str(ROOT), DIFFUSION_LAB_USER_MODELS=str(models_dir))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--name", name,
           "--preset", preset, "--overrides", json.dumps(overrides or {})]
    settings = effective_settings(preset, overrides)
    total = settings["steps"]
    cfg = build_config(name, preset, overrides)
    kill_step = max(cfg.ckpt_every + 1, int(kill_at * total))
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last_seen = 0
    deadline = time.time() + timeout_s
    try:
        for line in p.stdout:  # type: ignore[union-attr]
            if line.startswith("step "):
                last_seen = int(line.split()[1])
                if last_seen >= kill_step:
                    break
            if time.time() > deadline:
                break
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    killed_after = time.perf_counter() - t0
    if p.returncode != -signal.SIGKILL:
        raise RuntimeError(f"child ended on its own (rc {p.returncode}): "
                           f"{p.stderr.read()[-2000:] if p.stderr else ''}")
    run_dir = models_dir / ".runs" / name
    import torch

    ck = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    ck_step = int(ck["step"])
    runs = {r.name: r for r in list_runs()}
    listed_unfinished = name in runs and not runs[name].finished and runs[name].step == ck_step
    t1 = time.perf_counter()
    res = resume_training(name)
    if not res.ok:
        raise RuntimeError(res.message)
    job = res.job
    job.wait(timeout_s)
    resumed_s = time.perf_counter() - t1
    steps_after = [s for s, _ in job.losses if s > ck_step]
    return {
        "preset": preset, "overrides": overrides or {}, "total_steps": total,
        "ckpt_every": cfg.ckpt_every, "killed_at_step": last_seen,
        "checkpoint_step": ck_step, "steps_lost": last_seen - ck_step,
        "listed_as_resumable": listed_unfinished, "resumed_state": job.state,
        "resumed_from": job.start_step, "final_step": job.step,
        "steps_after_resume_contiguous": steps_after == list(range(ck_step + 1, job.step + 1)),
        "error": job.error, "seconds_before_kill": round(killed_after, 1),
        "seconds_to_finish_after_resume": round(resumed_s, 1),
        "model_dir": str(models_dir / name),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--name", default="killed")
    ap.add_argument("--preset", default="digits")
    ap.add_argument("--overrides", default="{}")
    ap.add_argument("--kill-at", type=float, default=0.55)
    ap.add_argument("--out", default=str(RESULTS / "train_kill"), help="path without suffix")
    a = ap.parse_args()
    if a.child:
        return _child(a.name, a.preset, json.loads(a.overrides))
    tmp = tempfile.mkdtemp(prefix="lab-kill-")
    r = kill_and_resume(tmp, a.preset, json.loads(a.overrides), a.kill_at, a.name)
    from diffusion_core.training.digits_check import evaluate_digits

    if r["resumed_state"] == "done" and a.preset.startswith("digits"):
        c = evaluate_digits(model=a.name, n=1000)
        r["check"] = {k: c[k] for k in ("mean_confidence", "min_class_share", "passes")}
    r["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(r, indent=2))
    ok = (r["steps_lost"] <= r["ckpt_every"] and r["listed_as_resumable"]
          and r["resumed_state"] == "done" and r["steps_after_resume_contiguous"])
    c = r.get("check", {})
    md = "\n".join([
        "# Train page: kill -9 mid-job, then resume", "",
        f"*Measured {r['date']} by `python bench/train_kill.py` (preset {r['preset']}, "
        f"overrides {json.dumps(r['overrides'])}, "
        f"{r['total_steps']} steps, a checkpoint every {r['ckpt_every']}).*", "",
        "| killed at step | checkpoint on disk | steps lost | listed to resume | resumed from "
        "| finished | after the kill → done | classifier check | all as promised |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {r['killed_at_step']} ({r['seconds_before_kill']} s in) | {r['checkpoint_step']} "
        f"| {r['steps_lost']} (≤ {r['ckpt_every']}) | {'yes' if r['listed_as_resumable'] else 'no'} "
        f"| {r['resumed_from']} | {r['final_step']} ({r['resumed_state']}) "
        f"| {r['seconds_to_finish_after_resume']} s "
        f"| {('passes' if c.get('passes') else 'fails') + ' (%.3f)' % c['mean_confidence'] if c else '-'} "
        f"| {'yes' if ok else 'NO'} |", ""])
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
