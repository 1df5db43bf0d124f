"""The Restore page: what to run (:class:`RestoreRequest`), the run, and what it gave
(:class:`RestoreOutcome`).

Restore mode noises the visitor's picture to a noise step (the same noise the Add-noise page
shows for the seed) and runs the reverse process back; generate mode starts from pure noise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from diffusion_core.app.estimate import Estimate, pick_default, restore_estimate
from diffusion_core.app.forward import DEFAULT_STEP
from diffusion_core.app.models import device_options, digit_models, photo_models, run_device
from diffusion_core.app.settings import choose, clamp_schedule
from diffusion_core.jobs.base import thread_plan
from diffusion_core.jobs.restore import RestoreJob, planned_steps
from diffusion_core.jobs.timing import Speed
from diffusion_core.maths.forward import draw_noise, sigma_at_step, step_for_sigma, x_at_step
from diffusion_core.maths.samplers import SPECS, get_sampler
from diffusion_core.maths.schedules import Schedule
from diffusion_core.media.export import (
    animation_size,
    frames_gif,
    frames_mp4,
    image_png,
    metrics_json,
    restore_animation_frames,
    strip_png,
)
from diffusion_core.models.registry import ModelInfo, list_models
from diffusion_core.system.device import device_label
from diffusion_core.tasks.restore import default_schedule
from diffusion_core.units import MAX_STEPS, SEED_MAX, clamp_float, clamp_int, sigma_from_255, sigma_to_255

MODE_RESTORE, MODE_GENERATE = "restore", "generate"
MODES = (MODE_RESTORE, MODE_GENERATE)
GEN_SIZES = (32, 64, 128, 256)  # sides of an invented picture (colour models)
DEFAULT_GEN_SIZE = 128
DIGIT_SIDE = 32  # a digits model draws 32 x 32
DEFAULT_STEPS = 25
DEFAULT_SAMPLER = "ddim"
TYPICAL_NOISE_255 = 25  # a fresh session restores a typical noisy photo: sigma 25 of 255
#: a first visit's (working size, steps), richest first: the first whose run fits the budget
#: (:func:`first_settings`); the fixed defaults without one
DEFAULT_LADDER = ((512, 25), (384, 25), (256, 25), (256, 20), (192, 20), (192, 15), (128, 15),
                  (128, 10))
FIXED_DEFAULTS = (256, DEFAULT_STEPS)

#: (label, value, delta, help) of one number card on the page
Card = tuple[str, str, "str | None", "str | None"]


def model_choices(mode: str, models: list[ModelInfo] | None = None) -> list[ModelInfo]:
    """The models a mode offers: photo models to restore; to generate, every model, the
    handwritten-digit ones first (a photo model invents only textures)."""
    models = list_models() if models is None else models
    if mode == MODE_RESTORE:
        return photo_models(models)
    digits = digit_models(models)
    return digits + [m for m in models if m not in digits]


def typical_step(schedule: Schedule) -> int:
    """The noise step of a typical noisy photo (:data:`TYPICAL_NOISE_255`)."""
    return step_for_sigma(schedule, sigma_from_255(TYPICAL_NOISE_255))


def first_settings(speed: Speed | None, budget: float | None) -> tuple[int, int]:
    """(working size, steps) of a first visit: the richest of :data:`DEFAULT_LADDER` whose
    default run (restoring a square colour photo from a typical noise step with the default
    sampler) is estimated within ``budget`` seconds on ``speed``; the fixed defaults
    without a speed or a budget."""
    start = typical_step(default_schedule())

    def seconds(rung: tuple[int, int]) -> float:
        size, steps = rung
        return restore_estimate(speed, (3, size, size), start, steps, DEFAULT_SAMPLER,
                                scored=True).seconds

    return pick_default(DEFAULT_LADDER, seconds, budget if speed else None, FIXED_DEFAULTS)


def follow_shared_step(own, seen, shared, schedule: Schedule) -> tuple[int, Any]:
    """This page's noise step follows the Add-noise page's (``shared``) whenever that one has
    moved since this page last looked (``seen``); a fresh session that never touched the
    Add-noise page starts at a typical noisy photo. ``own`` is None before the first time.
    Returns (the step, clamped to 1..T; the shared step now seen)."""
    T = schedule.T
    if own is None:
        moved = shared is not None and shared != DEFAULT_STEP
        own, seen = (clamp_int(shared, 1, T, 1) if moved else typical_step(schedule)), shared
    elif shared != seen:
        own, seen = clamp_int(shared, 1, T, 1), shared
    return clamp_int(own, 1, T, typical_step(schedule)), seen


@dataclass(frozen=True)
class RestoreRequest:
    """One run's settings, each clamped to what the page allows (see :meth:`clamped`)."""

    mode: str
    model: str
    schedule: Schedule
    seed: int
    noise_step: int  # where the run starts (T when generating)
    steps: int  # sampler steps asked for
    sampler: str
    eta: float  # the visitor's eta; only samplers that take it get it (see run_eta)
    gen_size: int
    device: str  # the menu's choice: "auto", "cpu" or "cuda"
    image: str | None = None  # the picture's label when restoring
    seen_shared_step: Any = None  # the Add-noise page's step this request followed

    @classmethod
    def clamped(cls, *, mode, model: str, schedule, T, seed, noise_step=None, shared_step=None,
                seen_shared_step=None, steps=DEFAULT_STEPS, sampler=DEFAULT_SAMPLER, eta=0.0,
                gen_size=DEFAULT_GEN_SIZE, device="auto", image: str | None = None) -> RestoreRequest:
        """A request from raw page values (any of which may be out of range or nonsense)."""
        mode = choose(mode, MODES, MODE_RESTORE)
        sched = clamp_schedule(schedule, T)
        if mode == MODE_RESTORE:
            noise_step, seen_shared_step = follow_shared_step(noise_step, seen_shared_step,
                                                              shared_step, sched)
        else:
            noise_step = sched.T
        return cls(mode=mode, model=str(model), schedule=sched, seed=clamp_int(seed, 0, SEED_MAX, 0),
                   noise_step=noise_step, steps=clamp_int(steps, 1, MAX_STEPS, DEFAULT_STEPS),
                   sampler=choose(sampler, list(SPECS), DEFAULT_SAMPLER),
                   eta=clamp_float(eta, 0.0, 1.0, 0.0),
                   gen_size=choose(gen_size, GEN_SIZES, DEFAULT_GEN_SIZE),
                   device=choose(device, device_options(), "auto"),
                   image=image if mode == MODE_RESTORE else None, seen_shared_step=seen_shared_step)

    def widget_values(self) -> dict[str, Any]:
        """The clamped values for the page's own widgets, by name (steps, sampler, eta and,
        when restoring, the noise step and the Add-noise step it followed)."""
        out: dict[str, Any] = {"steps": self.steps, "sampler": self.sampler, "eta": self.eta}
        if self.restoring:
            out |= {"step": self.noise_step, "seen_shared_step": self.seen_shared_step}
        return out

    # ------------------------------------------------------------------ derived
    @property
    def restoring(self) -> bool:
        return self.mode == MODE_RESTORE

    @property
    def T(self) -> int:
        return self.schedule.T

    @property
    def takes_eta(self) -> bool:
        return get_sampler(self.sampler).takes("eta")

    @property
    def run_eta(self) -> float:
        """eta for the sampler: the visitor's where the sampler takes it, else 0."""
        return self.eta if self.takes_eta else 0.0

    @property
    def karras(self) -> bool:
        """The sampler visits the noise levels spaced as in Karras et al."""
        return get_sampler(self.sampler).spacing == "karras"

    @property
    def sigma(self) -> float:
        return sigma_at_step(self.schedule, self.noise_step)

    @property
    def sigma_255(self) -> float:
        return sigma_to_255(self.sigma)

    @property
    def planned(self) -> int:
        """Sampler steps the run really makes (fewer than asked when the start is close)."""
        return planned_steps(self.noise_step, self.steps)

    @property
    def run_device(self) -> torch.device:
        return run_device(self.device)

    def run_shape(self, x0: torch.Tensor | None, channels: int) -> tuple[int, int, int]:
        """(C, H, W) of the run with a model of ``channels``: the picture's (gray for a
        one-channel model) when restoring; a digits model's 32 px or the size chosen when
        generating."""
        if self.restoring:
            return (1 if channels == 1 else x0.shape[0], *x0.shape[1:])
        side = DIGIT_SIDE if channels == 1 else self.gen_size
        return (channels, side, side)

    def estimate(self, speed: Speed | None, x0: torch.Tensor | None,
                 channels: int) -> Estimate | None:
        """How long this run will take with ``speed`` (None: not known)."""
        if speed is None or (self.restoring and x0 is None):
            return None
        return restore_estimate(speed, self.run_shape(x0, channels), self.noise_step,
                                self.steps, self.sampler, scored=self.restoring)

    def start_picture(self, x0: torch.Tensor) -> torch.Tensor:
        """Where a restore starts: ``x0`` noised to the noise step with the seed's noise."""
        return x_at_step(x0, draw_noise(x0.shape, self.seed), self.schedule, self.noise_step)

    def before_run(self, job, x0: torch.Tensor | None) -> str | None:
        """What the page shows before a run when restoring: "first" (no run yet), "changed"
        (the settings changed since the last run) or None (a run is going, or is current)."""
        if not self.restoring or (job is not None and not job.done):
            return None
        if job is None:
            return "first"
        return "changed" if self.changed_since(job.settings, x0) else None

    def changed_since(self, settings: dict | None, x0: torch.Tensor | None) -> bool:
        """The picture, model, start or seed differ from ``settings`` (a run's)."""
        if settings is None:
            return False
        now = {"mode": self.mode, "model": self.model, "noise_step": self.noise_step,
               "seed": self.seed, "image": self.image,
               "size": list(x0.shape[1:]) if x0 is not None else None}
        return any(settings.get(k) != v for k, v in now.items() if k != "size" or v is not None)

    # ------------------------------------------------------------------ the run
    def start(self, denoiser, x0: torch.Tensor | None,
              alive: Callable[[], bool] | None = None) -> RestoreJob:
        """Start the run in the background (it queues if the server is busy)."""
        device = self.run_device
        image = None
        if self.restoring:
            image = x0.mean(0, keepdim=True) if denoiser.channels == 1 and x0.shape[0] == 3 else x0
        shape = self.run_shape(image, denoiser.channels)
        settings = {"mode": self.mode, "model": self.model, "sampler": self.sampler,
                    "steps": self.steps, "noise_step": self.noise_step, "T": self.T,
                    "schedule": self.schedule.name, "eta": self.run_eta, "seed": self.seed,
                    "sigma": self.sigma, "size": list(shape[1:]), "image": self.image,
                    "device": device_label(device, thread_plan())}
        return RestoreJob(denoiser, image, self.schedule, self.noise_step, self.steps,
                          sampler=self.sampler, seed=self.seed, eta=self.run_eta, device=device,
                          shape=shape, settings=settings, alive=alive).start()


# ---------------------------------------------------------------------- while it runs


def progress(snap: dict) -> tuple[float, str]:
    """(fraction done, one line) from a running :class:`RestoreJob`'s snapshot."""
    n, i, latest = max(snap["n"], 1), snap["i"], snap["latest"]
    text = {"new": "Starting…",
            "waiting": "Waiting: another run is using the model; yours starts next."}.get(
        snap["state"], f"Step {i} of {n}" + (f" · noise step {latest['step']}" if latest else "")
        + f" · {snap['elapsed']:.1f} s" + (f" · on {snap['runs_on']}" if snap.get("runs_on") else ""))
    return min(i / n, 1.0), text


# ---------------------------------------------------------------------- what it gave


class RestoreOutcome:
    """A finished (or stopped) run, as the page shows it."""

    def __init__(self, job: RestoreJob):
        self.job = job
        self.result = job.result
        self.settings = job.settings

    @property
    def known(self) -> bool:
        """A restore of a known picture (so it can be scored), not a generation."""
        return self.job.image is not None and self.settings.get("mode") == MODE_RESTORE

    def cards(self) -> list[Card]:
        """The numbers above the pictures: scores (restoring) or steps, time, memory."""
        res, fm = self.result, self.result.final_metrics
        cards: list[Card] = []
        if self.known:
            cards += [("Noisy input PSNR", f"{fm.get('noisy_psnr', float('nan')):.2f} dB", None,
                       "Peak signal-to-noise ratio against the original: higher is closer."),
                      ("Restored PSNR", f"{fm.get('psnr', float('nan')):.2f} dB",
                       f"{fm.get('psnr', 0) - fm.get('noisy_psnr', 0):+.2f} dB", None),
                      ("Restored SSIM", f"{fm.get('ssim', float('nan')):.3f}", None,
                       "Structural similarity to the original: 1 is identical.")]
        else:
            cards.append(("Steps", f"{res.steps_run}", None, None))
        cards += [("Time", f"{res.seconds:.2f} s", None, "Sampling only (not loading the model)."),
                  ("Steps per second", f"{res.steps_per_s:.2f}", None, None)]
        if res.peak_memory_mb is not None:
            cards.append(("Peak GPU memory", f"{res.peak_memory_mb:.0f} MB", None, None))
        elif self.job.peak_rss_mb is not None:
            cards.append(("Peak memory", f"{self.job.peak_rss_mb:.0f} MB", None,
                          "Peak memory of the whole server process so far (it is shared)."))
        return cards

    def frame_steps(self) -> list[int]:
        """The sampler steps (1-based) whose frames were kept."""
        return [fr.i + 1 for fr in self.result.frames]

    def frame(self, k: int | None = None):
        """The kept frame of sampler step ``k`` (1-based); the first one for any other k."""
        frames = self.result.frames
        return next((fr for fr in frames if fr.i + 1 == k), frames[0])

    # ------------------------------------------------------------------ downloads
    @property
    def stem(self) -> str:
        cfg = self.settings
        return (f"restore_{cfg['model']}_{cfg['sampler']}_{self.result.steps_run}steps"
                f"_t{cfg['noise_step']}_seed{cfg['seed']}")

    def _once(self, kind: str, make: Callable[[], Any]):
        """Made on the first download, then kept with the job."""
        if kind not in self.job.cache:
            self.job.cache[kind] = make()
        return self.job.cache[kind]

    def _frames(self) -> list[torch.Tensor]:
        job = self.job
        return restore_animation_frames(job.image if self.known else None, self.result.noise,
                                        job.schedule, job.step, self.result)

    def _animation(self, writer) -> bytes:
        return writer(self._frames(), **animation_size(max(self.settings["size"])))

    def gif(self) -> bytes:
        return self._once("gif", functools.partial(self._animation, frames_gif))

    def mp4(self) -> bytes:
        return self._once("mp4", functools.partial(self._animation, frames_mp4))

    def strip(self) -> bytes:
        return self._once("strip", lambda: strip_png(self.result))

    def png(self) -> bytes:
        return self._once("png", lambda: image_png(self.result.final))

    def json(self) -> str:
        return self._once("json", lambda: metrics_json(self.result, extra=self.settings))
