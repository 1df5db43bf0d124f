"""How many steps are enough? Quality and cost of each sampler against its number of steps.

:func:`sampler_vs_steps` restores one image from one noisy start (the same seed, so the same
noise) with every sampler and every number of steps asked for, and scores each result:

* ``psnr`` / ``ssim`` against the original picture;
* ``psnr_vs_reference``: agreement with a long DDIM run (250 steps by default) from the same
  start, i.e. how close a short run gets to the answer the reverse process converges to;
* ``model_calls``: network evaluations (NFE), which is what a step costs: one per step,
  two for Heun (except its last step), and ``seconds`` of wall time.

:func:`plain_words_summary` turns the rows into sentences for the page;
:class:`diffusion_core.jobs.study.StudyJob` runs a study in a background thread so a page can
show progress and stop it. No streamlit.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import torch

from diffusion_core.maths.samplers import (
    SPECS,
    Denoiser,
    DenoiserWrapper,
    StepCallback,
    StepInfo,
    spaced_timesteps,
)
from diffusion_core.maths.schedules import Schedule
from diffusion_core.tasks.metrics import psnr, ssim
from diffusion_core.tasks.restore import restore

DEFAULT_STEPS = (1, 2, 5, 10, 25, 50)


def short_name(sampler: str) -> str:
    spec = SPECS.get(sampler)
    return spec.short_name if spec is not None else sampler


def effective_steps(step: int, steps: int) -> int:
    """Sampler steps a run from UI noise ``step`` really makes (never more than ``step``)."""
    return len(spaced_timesteps(int(step) - 1, int(steps))) if step > 0 else 0


def model_calls_for(sampler: str, n_steps: int) -> int:
    """Network evaluations of ``n_steps`` sampler steps ending at the clean image (sigma 0):
    one per step; Heun's second (corrector) call is skipped on the last step."""
    spec = SPECS.get(sampler)
    return spec.model_calls(n_steps) if spec is not None else max(int(n_steps), 0)


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


class _Counting(DenoiserWrapper):
    """Wraps a denoiser and counts its calls (and tells ``on_call(x, sigma, x0_hat)`` after
    each one)."""

    def __init__(self, den: Denoiser, on_call: Callable[..., None] | None = None):
        super().__init__(den)
        self.calls = 0
        self.on_call = on_call

    def forward(self, y, sigma):
        out = self.den(y, sigma)
        self.calls += 1
        if self.on_call is not None:
            self.on_call(y, sigma, out)
        return out


def sampler_vs_steps(
    denoiser: Denoiser,
    image: torch.Tensor,
    schedule: Schedule,
    step: int,
    samplers,
    steps_list,
    seed: int,
    reference_steps: int = 250,
    callback: StepCallback | None = None,
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
    call and after every finished row, with a :class:`StepInfo` whose ``i``/``n`` count
    model calls (``sigma``, ``x`` and ``denoised`` are those of the latest call) and which
    carries ``calls_done``, ``calls_total``, ``phase`` = "reference" or "run", ``sampler``,
    ``steps`` and ``row`` (the finished row, or None); ``should_stop()`` ends the study
    early, keeping the rows finished so far.
    """
    unknown = [s for s in samplers if s not in SPECS]
    if unknown:
        raise ValueError(f"Unknown sampler(s): {', '.join(map(str, unknown))}")
    step = int(min(max(int(step), 1), schedule.T))
    x0 = image.float()
    runs = plan(step, samplers, steps_list, reference_steps)
    total = sum(model_calls_for(s, n) for s, _, n in runs)
    state: dict[str, Any] = {"done": 0, "sampler": "ddim", "steps": runs[0][2],
                             "phase": "reference", "last": StepInfo(0, total, 0.0)}

    def tell(row=None):
        if callback is not None:
            done = state["done"]
            callback(replace(state["last"], i=max(done - 1, 0), n=total, calls_done=done,
                             calls_total=total, phase=state["phase"], sampler=state["sampler"],
                             steps=state["steps"], row=row))

    def on_call(y, sigma, out):
        state["done"] += 1
        s = float(torch.as_tensor(sigma).reshape(-1)[0])
        state["last"] = StepInfo(state["done"] - 1, total, s, x=y, denoised=out)
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
        if ok and not (s in SPECS and SPECS[s].stochastic):
            n, calls = ok[0]["steps"], ok[0]["model_calls"]
            agree.append(f"{short_name(s)} with {n} step{'s' if n != 1 else ''}"
                         + (f" ({calls} calls)" if calls != n else ""))
    if agree and ref_steps:
        parts.append(f"Practically the same picture as the {ref_steps}-step DDIM run (35 dB "
                     f"agreement or more): {', '.join(agree)}.")
    return " ".join(parts)

