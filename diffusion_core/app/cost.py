"""The Cost-of-steps page: what to measure (:class:`CostRequest`), the study, and its rows
arranged for the charts and the table (:class:`StudyResults`).

The same noisy picture is cleaned with every chosen sampler and number of steps, each run
timed and scored against the original and against a long DDIM run (the yardstick).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from diffusion_core.app.settings import choose, clamp_schedule, keep_known
from diffusion_core.jobs.study import StudyJob
from diffusion_core.maths.forward import sigma_at_step, step_for_sigma
from diffusion_core.maths.samplers import SPECS
from diffusion_core.maths.schedules import Schedule
from diffusion_core.system.device import device_label, pick_device
from diffusion_core.tasks.pictures import fit_size
from diffusion_core.tasks.steps_study import effective_steps, planned_calls
from diffusion_core.units import MAX_STEPS, SEED_MAX, clamp_int, sigma_from_255

SIZES = (32, 64, 96, 128, 192, 256)  # longest side of the copy that is measured
NOISES = (10, 25, 50, 100, 200)  # sigma on the 0-255 scale
STEP_CHOICES = (1, 2, 3, 5, 10, 15, 20, 25, 50, 100)
DEFAULT_SIZE, DEFAULT_NOISE = 128, 50
DEFAULT_SAMPLERS = ("ddim", "dpmpp_2m", "heun")
DEFAULT_STEP_COUNTS = (1, 2, 5, 10, 25)
REFERENCE_STEPS = 250  # the yardstick: DDIM with this many steps
MAX_CALLS = 3000  # a server-side ceiling on network calls per study, whatever the widgets say
PREFERRED_MODEL = "natural"


@dataclass(frozen=True)
class CostRequest:
    """One study's settings, each clamped to what the page offers (see :meth:`clamped`)."""

    model: str
    schedule: Schedule
    seed: int
    size: int
    noise_255: int
    samplers: tuple[str, ...]  # as chosen (known ones only)
    step_counts: tuple[int, ...]  # as chosen (offered ones only)
    image: str = ""  # the picture's label

    @classmethod
    def clamped(cls, *, model: str, schedule, T, seed, size=DEFAULT_SIZE, noise=DEFAULT_NOISE,
                samplers=DEFAULT_SAMPLERS, steps=DEFAULT_STEP_COUNTS, image: str = "") -> CostRequest:
        """A request from raw page values (any of which may be out of range or nonsense)."""
        sched = clamp_schedule(schedule, T)
        return cls(model=str(model), schedule=sched, seed=clamp_int(seed, 0, SEED_MAX, 0),
                   size=choose(size, SIZES, DEFAULT_SIZE), noise_255=choose(noise, NOISES, DEFAULT_NOISE),
                   samplers=tuple(keep_known(samplers, list(SPECS))),
                   step_counts=tuple(keep_known(steps, STEP_CHOICES)), image=str(image))

    def widget_values(self) -> dict:
        """The clamped values for the page's widgets, by name."""
        return {"size": self.size, "noise": self.noise_255, "samplers": list(self.samplers),
                "steps": list(self.step_counts)}

    # ------------------------------------------------------------------ derived
    @property
    def T(self) -> int:
        return self.schedule.T

    @property
    def run_samplers(self) -> list[str]:
        """The chosen samplers in the order the menus list them."""
        return [s for s in SPECS if s in self.samplers]

    @property
    def steps_list(self) -> list[int]:
        """The numbers of steps to try, each once, smallest first."""
        return sorted({clamp_int(k, 1, MAX_STEPS, 1) for k in self.step_counts})

    @property
    def noise_step(self) -> int:
        """The noise step whose level is the chosen sigma."""
        return clamp_int(step_for_sigma(self.schedule, sigma_from_255(self.noise_255)), 1, self.T, 1)

    @property
    def sigma(self) -> float:
        return sigma_at_step(self.schedule, self.noise_step)

    @property
    def calls(self) -> int:
        """Network calls the whole study makes, the yardstick included."""
        if not self.run_samplers or not self.steps_list:
            return 0
        return planned_calls(self.noise_step, self.run_samplers, self.steps_list, REFERENCE_STEPS)

    @property
    def reference_run(self) -> int:
        """Steps the yardstick really makes from this start (at most the noise step)."""
        return effective_steps(self.noise_step, REFERENCE_STEPS)

    @property
    def problem(self) -> str | None:
        """Why the study cannot start, in one sentence; None when it can."""
        if not self.run_samplers:
            return "Pick at least one sampler."
        if not self.steps_list:
            return "Pick at least one number of steps."
        if self.calls > MAX_CALLS:
            return (f"That is {self.calls} network calls, more than the {MAX_CALLS} this page "
                    "allows. Choose fewer samplers, fewer or smaller numbers of steps, or less noise.")
        return None

    def picture(self, x: torch.Tensor) -> torch.Tensor:
        """The copy of picture ``x`` that is measured (longest side at most ``size``)."""
        return fit_size(x, self.size)

    def _current(self, x0: torch.Tensor) -> dict:
        h, w = x0.shape[-2:]
        return {"model": self.model, "image": self.image, "size": [w, h],
                "noise_255": self.noise_255, "seed": self.seed, "samplers": self.run_samplers,
                "steps": self.steps_list, "T": self.T, "schedule": self.schedule.name}

    def changed_since(self, settings: dict, x0: torch.Tensor) -> bool:
        """Any setting differs from ``settings`` (a study's)."""
        return any(settings.get(k) != v for k, v in self._current(x0).items())

    def start(self, denoiser, x0: torch.Tensor, device) -> StudyJob:
        """Start the study of ``x0`` (the measured copy) in the background."""
        device = torch.device(device)
        settings = self._current(x0) | {"step": self.noise_step, "device": device_label(device)}
        return StudyJob(denoiser, x0, self.schedule, self.noise_step, self.run_samplers,
                        self.steps_list, seed=self.seed, reference_steps=REFERENCE_STEPS,
                        device=device, settings=settings).start()

    @staticmethod
    def run_device() -> torch.device:
        return pick_device("auto")


# ---------------------------------------------------------------------- while it runs


def _short(sampler: str) -> str:
    return SPECS[sampler].short_name if sampler in SPECS else sampler


def progress(snap: dict) -> tuple[float, str]:
    """(fraction done, one line) from a running :class:`StudyJob`'s snapshot."""
    total, done = max(snap["total"], 1), snap["calls_done"]
    if snap["state"] in ("new", "waiting"):
        return min(done / total, 1.0), "Waiting: another run is using the model; yours starts next."
    what = snap["current"]
    now = ("the yardstick (DDIM, the long run)" if what is None
           else f"{_short(what[0])} with {what[1]} step{'s' if what[1] != 1 else ''}")
    left = snap["elapsed"] / done * (total - done) if done else float("nan")
    return min(done / total, 1.0), (
        f"Now: {now} · network call {done} of {total} · {snap['elapsed']:.0f} s"
        + (f" · about {left:.0f} s left" if math.isfinite(left) else ""))


# ---------------------------------------------------------------------- what it found


class StudyResults:
    """A study's rows, scored by ``score``: "original" (PSNR against the original picture)
    or "reference" (agreement with the long run, in dB; the run itself is infinitely close
    and is drawn at the top of the chart)."""

    SCORES = ("original", "reference")

    def __init__(self, rows: list[dict], score: str = "original"):
        self.rows = rows
        self.score = "psnr" if choose(score, self.SCORES, "original") == "original" else "psnr_vs_reference"
        finite = [r["psnr_vs_reference"] for r in rows if math.isfinite(r["psnr_vs_reference"])]
        self.cap = max(finite + [40.0]) + 5  # where "identical" (infinite agreement) is drawn

    @property
    def reference_steps(self) -> int:
        return self.rows[0]["reference_steps"]

    def y(self, row: dict) -> float:
        v = row[self.score]
        return self.cap if math.isinf(v) else v

    def by_sampler(self) -> list[tuple[str, list[dict]]]:
        """(sampler, its rows by number of steps), samplers in the menus' order."""
        return [(s, sorted((r for r in self.rows if r["sampler"] == s), key=lambda r: r["steps"]))
                for s in SPECS if any(r["sampler"] == s for r in self.rows)]

    @property
    def has_identical(self) -> bool:
        """Agreement is shown and some run is the long run itself (no finite score)."""
        return self.score == "psnr_vs_reference" and any(math.isinf(r["psnr_vs_reference"])
                                                         for r in self.rows)

    def table(self) -> list[dict]:
        """One row per run for the page's table (an empty agreement cell: the yardstick)."""
        return [{
            "sampler": _short(r["sampler"]),
            "steps": r["steps"],
            "network calls": r["model_calls"],
            "PSNR vs original (dB)": round(r["psnr"], 2),
            "SSIM": round(r["ssim"], 3) if math.isfinite(r["ssim"]) else None,
            "agreement with the long run (dB)": (round(r["psnr_vs_reference"], 1)
                                                 if math.isfinite(r["psnr_vs_reference"]) else None),
            "seconds": round(r["seconds"], 2),
        } for r in self.rows]
