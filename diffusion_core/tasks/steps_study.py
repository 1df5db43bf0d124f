"""How many steps are enough? Quality and cost of each sampler against its number of steps.

:func:`sampler_vs_steps` restores one image from one noisy start (the same seed, so the same
noise) with every sampler and every number of steps asked for, and scores each result:

* ``psnr`` / ``ssim`` against the original picture;
* ``psnr_vs_reference``: agreement with a long DDIM run (250 steps by default) from the same
  start, i.e. how close a short run gets to the answer the reverse process converges to;
* ``model_calls``: network evaluations (NFE), which is what a step costs: one per step,
  two for Heun (except its last step), and ``seconds`` of wall time.

:func:`plain_words_summary` turns the rows into sentences for the page, and :class:`StudyJob`
runs a study in a background thread so a page can show progress and stop it. No streamlit.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable

import torch

from diffusion_core.jobs.restore_jobs import _SLOTS, friendly_error
from diffusion_core.maths.samplers import SAMPLERS, spaced_timesteps
from diffusion_core.maths.schedules import Schedule
from diffusion_core.tasks.restore import psnr, restore, ssim

SHORT_NAMES = {"ddim": "DDIM", "ddpm": "DDPM", "heun": "Heun", "dpmpp_2m": "DPM-Solver++"}
CALLS_PER_STEP = {"ddim": 1, "ddpm": 1, "dpmpp_2m": 1, "heun": 2}
DEFAULT_STEPS = (1, 2, 5, 10, 25, 50)


def short_name(sampler: str) -> str:
    return SHORT_NAMES.get(sampler, sampler)


def effective_steps(step: int, steps: int) -> int:
    """Sampler steps a run from UI noise ``step`` really makes (never more than ``step``)."""
    return len(spaced_timesteps(int(step) - 1, int(steps))) if step > 0 else 0


def model_calls_for(sampler: str, n_steps: int) -> int:
    """Network evaluations of ``n_steps`` sampler steps ending at the clean image (sigma 0):
    one per step; Heun's second (corrector) call is skipped on the last step."""
    if n_steps <= 0:
        return 0
    if CALLS_PER_STEP.get(sampler, 1) == 2:
        return 2 * n_steps - 1
    return n_steps


def plan(step: int, samplers, steps_list, reference_steps: int = 250) -> list[tuple[str, int, int]]:
    """The runs a study makes: ``(sampler, steps requested, steps run)``, the reference first
    (as ``("ddim", reference_steps, n)``). Step counts that collapse to the same number of
    sampler steps (because the start is only ``step`` noise steps away) are run once."""
    runs = [("ddim", int(reference_steps), effective_steps(step, reference_steps))]
    for s in samplers:
        seen: set[int] = set()
        for k in sorted({int(k) for k in steps_list if int(k) >= 1}):
            n = effective_steps(step, k)
            if n in seen or n <= 0:
                continue
            seen.add(n)
            runs.append((s, k, n))
    return runs


def planned_calls(step: int, samplers, steps_list, reference_steps: int = 250) -> int:
    return sum(model_calls_for(s, n) for s, _, n in plan(step, samplers, steps_list, reference_steps))


class _Counting(torch.nn.Module):
    """Wraps a denoiser and counts its calls (and tells ``on_call`` after each one)."""

    def __init__(self, den, on_call: Callable[[], None] | None = None):
        super().__init__()
        self.den = den
        self.calls = 0
        self.on_call = on_call

    @property
    def channels(self) -> int:
        return int(getattr(self.den, "channels", 3))

    @property
    def sigma_data(self) -> float:
        return float(getattr(self.den, "sigma_data", 0.5))

    def forward(self, y, sigma):
        out = self.den(y, sigma)
        self.calls += 1
        if self.on_call is not None:
            self.on_call()
        return out


def sampler_vs_steps(
    denoiser,
    image: torch.Tensor,
    schedule: Schedule,
    step: int,
    samplers,
    steps_list,
    seed: int,
    reference_steps: int = 250,
    callback: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | torch.device = "cpu",
) -> list[dict]:
    """Restore ``image`` (C,H,W in [-1,1]) from UI noise ``step`` with each sampler and number
    of steps; every run starts from the same noisy picture (``seed``).

    Returns one row per run (samplers in the order given, steps ascending)::

        {sampler, label, steps, steps_requested, model_calls, psnr, ssim, seconds,
         psnr_vs_reference, reference_steps, reference_psnr, noisy_psnr, sigma}

    ``steps`` is the number of sampler steps actually run (a start ``step`` noise steps from
    the clean picture allows at most ``step``). ``callback(info)`` is told after every model
    call (``calls_done``, ``calls_total``, ``phase`` = "reference" or "run", ``sampler``,
    ``steps``, ``row`` = the finished row or None); ``should_stop()`` ends the study early,
    keeping the rows finished so far.
    """
    unknown = [s for s in samplers if s not in SAMPLERS]
    if unknown:
        raise ValueError(f"Unknown sampler(s): {', '.join(map(str, unknown))}")
    step = int(min(max(int(step), 1), schedule.T))
    x0 = image.float()
    runs = plan(step, samplers, steps_list, reference_steps)
    total = sum(model_calls_for(s, n) for s, _, n in runs)
    state: dict[str, Any] = {"done": 0, "sampler": "ddim", "steps": runs[0][2],
                             "phase": "reference"}

    def tell(row=None):
        if callback is not None:
            callback({"calls_done": state["done"], "calls_total": total, "phase": state["phase"],
                      "sampler": state["sampler"], "steps": state["steps"], "row": row})

    def on_call():
        state["done"] += 1
        tell()

    counting = _Counting(denoiser, on_call)
    stop = should_stop or (lambda: False)

    def one(sampler: str, k: int):
        counting.calls = 0
        res = restore(counting, x0, schedule, step, k, sampler=sampler, seed=seed,
                      device=device, keep_frames=False, compute_metrics=False,
                      should_stop=stop)
        return res, counting.calls

    ref, _ = one("ddim", reference_steps)
    if ref.stopped or stop():
        return []
    ref_psnr = psnr(ref.final, x0)
    noisy_psnr = psnr(ref.start * math.sqrt(1 + float(schedule.sigmas[step - 1]) ** 2), x0)
    rows: list[dict] = []
    for sampler, k, n in runs[1:]:
        state["sampler"], state["steps"], state["phase"] = sampler, n, "run"
        if sampler == "ddim" and n == runs[0][2]:
            res, calls = ref, model_calls_for("ddim", n)  # the reference itself: no rerun
            state["done"] += calls
        else:
            res, calls = one(sampler, k)
        if res.stopped or stop():
            break
        row = {
            "sampler": sampler,
            "label": short_name(sampler),
            "steps": res.steps_run,
            "steps_requested": k,
            "model_calls": calls,
            "psnr": psnr(res.final, x0),
            "ssim": ssim(res.final, x0),
            "seconds": res.seconds,
            "psnr_vs_reference": psnr(res.final, ref.final),
            "reference_steps": ref.steps_run,
            "reference_psnr": ref_psnr,
            "noisy_psnr": noisy_psnr,
            "sigma": float(schedule.sigmas[step - 1]),
        }
        rows.append(row)
        tell(row)
    return rows


def steps_to_reach(rows: list[dict], sampler: str, tol_db: float = 0.3,
                   key: str = "psnr") -> dict | None:
    """The first row (fewest steps) of ``sampler`` within ``tol_db`` of its best ``key``."""
    mine = sorted((r for r in rows if r["sampler"] == sampler and math.isfinite(r[key])),
                  key=lambda r: r["steps"])
    if not mine:
        return None
    best = max(r[key] for r in mine)
    return next(r for r in mine if r[key] >= best - tol_db)


def plain_words_summary(rows: list[dict], tol_db: float = 0.3) -> str:
    """Sentences like "DPM-Solver++ reaches within 0.3 dB of its best (31.2 dB) with 10 steps
    (10 model calls)", one per sampler, cheapest first, plus how close each one's best run
    came to the long reference run."""
    if not rows:
        return "Nothing was measured yet."
    order = list(dict.fromkeys(r["sampler"] for r in rows))
    found = []
    for s in order:
        r = steps_to_reach(rows, s, tol_db)
        if r is not None:
            best = max(x["psnr"] for x in rows if x["sampler"] == s)
            found.append((r["model_calls"], s, r, best))
    found.sort(key=lambda t: (t[0], order.index(t[1])))
    parts = []
    for calls, s, r, best in found:
        n = r["steps"]
        parts.append(f"{short_name(s)} reaches within {tol_db:g} dB of its best ({best:.1f} dB) "
                     f"with {n} step{'s' if n != 1 else ''} ({calls} model "
                     f"call{'s' if calls != 1 else ''}).")
    if len(found) > 1 and all(r["steps"] == 1 for _, _, r, _ in found):
        parts.append("Here the very first guess already scores best: it is the average of "
                     "every picture that could hide under the noise, which PSNR favours; more "
                     "steps make the picture sharper rather than closer.")
    ref_steps = rows[0].get("reference_steps")
    agree = []
    for s in order:
        mine = [r for r in rows if r["sampler"] == s and not math.isnan(r["psnr_vs_reference"])]
        ok = sorted((r for r in mine if r["psnr_vs_reference"] >= 35.0), key=lambda r: r["steps"])
        if ok and s != "ddpm":
            n, calls = ok[0]["steps"], ok[0]["model_calls"]
            agree.append(f"{short_name(s)} with {n} step{'s' if n != 1 else ''}"
                         + (f" ({calls} calls)" if calls != n else ""))
    if agree and ref_steps:
        parts.append(f"Practically the same picture as the {ref_steps}-step DDIM run (35 dB "
                     f"agreement or more): {', '.join(agree)}.")
    return " ".join(parts)


class StudyJob:
    """One :func:`sampler_vs_steps` study in a daemon thread, for a page to poll and stop.

    Shares the process-wide limit on concurrent runs with the Restore page's jobs."""

    def __init__(self, denoiser, image: torch.Tensor, schedule: Schedule, step: int,
                 samplers, steps_list, seed: int = 0, reference_steps: int = 250,
                 device: str | torch.device = "cpu", settings: dict | None = None):
        self.denoiser = denoiser
        self.image = image
        self.schedule = schedule
        self.step = int(step)
        self.samplers = list(samplers)
        self.steps_list = list(steps_list)
        self.seed = int(seed)
        self.reference_steps = int(reference_steps)
        self.device = torch.device(device)
        self.settings = dict(settings or {})
        self.total = planned_calls(self.step, self.samplers, self.steps_list, reference_steps)
        self.state = "new"  # new, waiting, running, done, stopped, failed
        self.calls_done = 0
        self.current: tuple[str, int] | None = None  # (sampler, steps); None: the reference
        self.rows: list[dict] = []
        self.error: str | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self.announced = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="steps-study", daemon=True)

    def start(self) -> StudyJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self.state in ("done", "stopped", "failed")

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def snapshot(self) -> dict:
        with self._lock:
            now = self.finished or time.time()
            return {"state": self.state, "calls_done": self.calls_done, "total": self.total,
                    "current": self.current, "rows": list(self.rows),
                    "elapsed": now - (self.started or now)}

    def _on_progress(self, info: dict) -> None:
        with self._lock:
            self.calls_done = info["calls_done"]
            self.total = info["calls_total"]
            self.current = (None if info.get("phase") == "reference"
                            else (info["sampler"], info["steps"]))
            if info.get("row") is not None:
                self.rows.append(info["row"])

    def _run(self) -> None:
        with self._lock:
            self.state = "waiting"
        acquired = False
        try:
            while not acquired:
                if self._stop.is_set():
                    with self._lock:
                        self.state, self.finished = "stopped", time.time()
                        self.started = self.started or self.finished
                    return
                acquired = _SLOTS.acquire(timeout=0.2)
            with self._lock:
                self.state, self.started = "running", time.time()
            rows = sampler_vs_steps(self.denoiser, self.image, self.schedule, self.step,
                                    self.samplers, self.steps_list, self.seed,
                                    reference_steps=self.reference_steps,
                                    callback=self._on_progress,
                                    should_stop=self._stop.is_set, device=self.device)
            with self._lock:
                self.rows = rows
                self.state = "stopped" if self._stop.is_set() else "done"
                self.finished = time.time()
        except Exception as e:  # noqa: BLE001 - every failure becomes one message
            with self._lock:
                self.error = friendly_error(e)
                self.state, self.finished = "failed", time.time()
        finally:
            if acquired:
                _SLOTS.release()
