"""The Lesson page: the story of diffusion in eight scenes, for a projector and a room.

Each :class:`Scene` has one big visual, at most two short sentences for the audience, notes
for the presenter and at most one control. What can be computed ahead is computed once per
server process, in the background, by :class:`LessonPrep` (started at the first visit of the
lesson, :func:`shared_prep`), and kept: the bell curves of every noise step offered, the
network's one-step guesses, the guidance knob's pictures at every strength, the cost of
steps, the GAN / VAE / diffusion comparison (the "Why diffusion?" page's run, seed 0), and
how fast this computer runs the two models the live scenes use. The live scenes (a restore,
a drawing from pure static) start when the scene opens, with settings that the measured
speed says finish in about :data:`LIVE_BUDGET_S` seconds (:func:`restore_plan`,
:func:`create_plan`; :mod:`diffusion_core.app.estimate`).

The pictures are SVGs made by :mod:`diffusion_core.app.lesson_figures`. No streamlit here.
"""

from __future__ import annotations

import atexit
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from diffusion_core import toy2d
from diffusion_core.app.create import create_models
from diffusion_core.app.estimate import create_estimate, model_speed, pick_default, restore_estimate
from diffusion_core.app.lesson_figures import (
    Panel,
    Tile,
    bars_under,
    bell_figure,
    image_uri,
    message_figure,
    pictures_figure,
    replay_figure,
    scatter_figure,
)
from diffusion_core.app.models import open_model, photo_models
from diffusion_core.app.toy2d import COLOURS, axis_ranges
from diffusion_core.jobs.base import Job
from diffusion_core.jobs.create import SWEEP, CreateJob, CreateResult
from diffusion_core.jobs.restore import RestoreJob
from diffusion_core.jobs.timing import Speed
from diffusion_core.jobs.toy2d import CompareJob
from diffusion_core.maths.forward import draw_noise, sigma_at_step, step_for_sigma, x_at_step
from diffusion_core.maths.samplers import Guided, generate
from diffusion_core.media.decode import ImageLoadError
from diffusion_core.media.samples import list_samples, load_sample
from diffusion_core.media.viz import grid_image, histogram, to_display
from diffusion_core.models.labels import class_names
from diffusion_core.models.registry import ModelInfo, list_models
from diffusion_core.system import counters
from diffusion_core.system.device import device_label
from diffusion_core.tasks.pictures import fit_size
from diffusion_core.tasks.restore import default_schedule
from diffusion_core.units import SEED_MAX, clamp_int, sigma_from_255

# ---------------------------------------------------------------------- settings

#: a live scene's run is sized to finish in about this time on the measured speed (the room
#: waits at most 6 s: a busy computer runs slower than it measured, bench/results/lesson.md)
LIVE_BUDGET_S = 3.0
SAMPLES_WANTED = ("cat", "astronaut", "coffee")  # the lesson's photo: the first installed
DISSOLVE_SIDE = 384  # the photo in the forward scrubber
PHOTO_SIDE = 256  # the photo of the bell-curve and guessing scenes
NOISE_SEED = 0
BELL_STEPS = (0, 20, 50, 100, 200, 400, 1000)  # the bell-curve scene's noise steps
GUESS_NOISE_255 = (25, 150, 400)  # the one-step guesses: noise on the 0-255 scale
PHOTO_MODELS = ("natural", "natural_full")  # preferred photo models, best at heavy noise first
RESTORE_NOISE_255 = 100
RESTORE_SAMPLER = "ddim"
#: (longest side, steps) of the live restore, richest first: the first that fits the budget
RESTORE_LADDER = ((320, 25), (256, 25), (256, 20), (192, 20), (192, 15), (128, 15), (128, 10),
                  (96, 8))
CREATE_SAMPLER = "heun"
CREATE_N = 16  # a 4 x 4 grid
#: the live drawing's steps, richest first (as the Create page's ladder)
CREATE_LADDER = (20, 15, 12, 10, 8, 6, 5)
REPLAY_FRAMES = 16  # a finished drawing is played back in at most this many frames
STEER_WS = SWEEP  # the guidance knob's strengths (the Create page's sweep)
STEER_CLASS = 7  # the class asked for (its index; the last class if there are fewer)
STEER_STEPS, STEER_SEED = 12, 1
COST_STEPS = (1, 2, 4, 8, 16, 32)
COST_SAMPLER, COST_N, COST_SEED = "dpmpp_2m", 2, 3
TOY2D_DATASET, TOY2D_SEED = "ring", 0
TOY2D_KINDS = toy2d.DEFAULT_MODELS  # GAN, VAE, diffusion
PAUSE_MAX_S = 20.0  # the warm-up waits at most this long (at a time) for a live run to end
LIVE_KINDS = ("restore", "create")  # runs the warm-up steps aside for
EXIT_WAIT_S = 30.0  # at the process's end, the longest wait for the warm-up to stop


# ---------------------------------------------------------------------- the scenes


@dataclass(frozen=True)
class Scene:
    """One scene: its short name (the scene index), title, words for the audience (at most
    two short sentences; ``{name}`` fields are filled from :func:`scene_words`), notes for
    the presenter (Markdown) and the alt text of its visual."""

    key: str
    short: str
    title: str
    words: str
    notes: str
    alt: str
    control: str | None = None  # what its one control is ("step", "again", "new", "guidance")
    live: bool = False


SCENES: tuple[Scene, ...] = (
    Scene("dissolve", "Static", "A photo dissolves into static",
          "Press Play: at every step a little random noise is mixed in. Soon nothing of the "
          "photo is left.",
          "- This is the **forward process**. Nothing is learned here: it is only noise.\n"
          "- Drag the slider back and forth: the same noise is used at every step, so it is "
          "one smooth path from photo to static.\n"
          "- Training pictures are destroyed like this on purpose, so that a network can learn "
          "to undo it.\n- Keys: → Space PageDown forward, ← PageUp back.",
          "The lesson photo mixed with random noise; a slider and a Play button move it from "
          "the clean photo to pure static.", control="slider"),
    Scene("bell", "Bell", "The static is plain Gaussian noise",
          "Count the pixel values: step by step they settle onto the bell curve. Every photo "
          "ends as the same kind of static.",
          "- The bars are the pixel values of the picture on the left; the red line is the "
          "standard normal distribution N(0, 1).\n- At step 0 the bars show the photo's own "
          "colours; by the last step they match the bell curve.\n- That is why generating can "
          "start from static: we know exactly what the end of the road looks like.",
          "The noisy photo at the chosen step beside a histogram of its pixel values, with "
          "the bell curve drawn over it.", control="step"),
    Scene("guess", "Guess", "A network guesses the clean picture",
          "Shown a noisy photo, the trained network guesses what lies under the noise, in one "
          "go. Through a little noise the guess is sharp; through a lot, only a blur.",
          "- Top row: the photo under more and more noise. Below each: the network's guess "
          "from it, one call each.\n- Under heavy noise many pictures could hide, so the best "
          "single guess is their average: a blur.\n- That is why the network is used many "
          "times, in small steps (next scene).",
          "Three noisy versions of the photo, from a little noise to mostly noise, and under "
          "each the network's one-step guess of the clean photo."),
    Scene("restore", "Back", "Step by step back",
          "So we never jump: take a small step towards the guess, then look and guess again. "
          "Each step removes a little noise.",
          "- Left: where the run starts. Middle: the picture now. Right: the network's current "
          "guess.\n- It starts by itself when the scene opens and is sized to this computer's "
          "measured speed; **Again** runs it once more.\n- The last guess and the picture "
          "meet at the end: that is the restored photo.",
          "The live restore: the noisy start, the picture now and the network's guess, "
          "updated step by step.", control="again", live=True),
    Scene("create", "New", "Something new from pure static",
          "Start from static that never was a photo, and the same small steps invent "
          "pictures. {world_sentence}",
          "- 16 pictures, each started from its own random static; nothing was copied.\n"
          "- The run is short on this computer, so the page plays it back at the end: static "
          "first, the finished pictures last.\n- **New ones** starts again from new static.",
          "Sixteen pictures drawn from pure static by the model, shown step by step from "
          "noise to the finished pictures.", control="new", live=True),
    Scene("steer", "Steer", "Steering: the guidance knob",
          "Tell the network what you want, and push each guess that way. The harder the "
          "push, the more every picture looks like the request.",
          "- The same 16 starting points at every setting: only the knob changes.\n- 0 "
          "ignores the request; 1 follows it plainly; higher values push past it and the "
          "pictures start to look alike.\n- This is classifier-free guidance, the knob behind "
          "text-to-image systems (there the request is a sentence).",
          "Sixteen pictures drawn from the same starting static with the request at the "
          "chosen guidance strength.", control="guidance"),
    Scene("gan", "GAN?", "Why not a GAN?",
          "Three kinds of model learned the same 8 clusters of points. {gan_sentence}",
          "- Gray: the data. Colour: 2,000 samples of each model, after the same 2,000 "
          "training steps (the Why-diffusion page, seed 0).\n- A GAN is a forger trained "
          "against a detective: it often settles on a few clusters that fool it (mode "
          "collapse). A VAE covers everything but smears between clusters.\n- Over 10 seeds: "
          "see bench/results/toy2d_seeds.md.",
          "Three square plots of points: the ring of 8 clusters in gray, and in colour the "
          "samples of a GAN, a VAE and a diffusion model."),
    Scene("cost", "Cost", "What it costs: the number of steps",
          "Every step is one more trip through the network, so twice the steps take twice "
          "the time. After about ten steps the pictures hardly change.",
          "- The same two starting points, drawn with 1 to 32 steps (DPM-Solver++); bars: "
          "the time each took on this computer.\n- One step gives only the blurry average of "
          "scene 3.\n- Cleverer samplers need fewer steps: the Cost-of-steps page measures "
          "four of them.",
          "Two pictures drawn with 1, 2, 4, 8, 16 and 32 steps side by side, with a bar "
          "under each for the time it took."),
)
N_SCENES = len(SCENES)


def scene_index(raw: Any) -> tuple[int, str | None]:
    """The 0-based scene for a ``?scene=N`` value (N counts from 1); None gives scene 1.
    Anything that is not a scene number gives scene 1 and a short message."""
    if raw is None:
        return 0, None
    if isinstance(raw, (list, tuple)):
        raw = raw[0] if raw else None
        if raw is None:
            return 0, None
    text = str(raw).strip()
    if re.fullmatch(r"[0-9]{1,6}", text) and 1 <= int(text) <= N_SCENES:
        return int(text) - 1, None
    shown = text if len(text) <= 12 else text[:12] + "…"
    return 0, (f"There is no scene “{shown}”: the lesson has scenes 1 to {N_SCENES}. "
               "Showing scene 1.")


def sentences(text: str) -> int:
    """How many sentences ``text`` has (ends of sentences: . ! ? followed by a space or the
    end; "e.g." style abbreviations are not used in the scenes)."""
    return len(re.findall(r"[.!?](?=\s|$)", text.strip()))


# ---------------------------------------------------------------------- the warm-up


def lesson_photo(side: int, names=SAMPLES_WANTED) -> tuple[torch.Tensor, str]:
    """The lesson's photo, longest side ``side``: the first installed of ``names`` (then
    any installed sample), with its name. ImageLoadError when no sample is installed."""
    installed = list_samples()
    for name in [n for n in names if n in installed] + installed:
        try:
            x = load_sample(name, max_side=side, mode="rgb").tensor
        except (ImageLoadError, KeyError):
            continue
        return x, name
    raise ImageLoadError("No built-in photo is installed, so the lesson has no photo to show.")


def lesson_photo_model(models: list[ModelInfo] | None = None) -> ModelInfo | None:
    """The photo model the lesson restores with: the first of :data:`PHOTO_MODELS`
    installed, else any photo model; None without one."""
    found = photo_models(models)
    by_name = {m.name: m for m in found}
    return next((by_name[n] for n in PHOTO_MODELS if n in by_name), found[0] if found else None)


def lesson_create_model(models: list[ModelInfo] | None = None) -> ModelInfo | None:
    """The model that draws from static: the first the Create page lists; None without one."""
    found = create_models(models)
    return found[0] if found else None


def model_side(info: ModelInfo) -> int:
    """The side of the pictures a drawing model makes (its card's ``size``, else 32)."""
    return clamp_int(info.card.get("size", 32), 8, 256, 32)


def _channels(denoiser, default: int = 1) -> int:
    """The channels a denoiser works on (a drawing model: 1 unless it says otherwise)."""
    return int(getattr(denoiser, "channels", default))


def one_step_guess(denoiser, x_t: torch.Tensor, sigma: float, device) -> torch.Tensor:
    """The network's guess of the clean picture from ``x_t`` (DDPM space, noise level
    ``sigma``) in one call, (C, H, W) on the CPU in [-1, 1]."""
    y = (x_t * math.sqrt(1.0 + sigma ** 2))[None].to(device)
    with torch.inference_mode():
        out = denoiser(y, torch.full((1,), float(sigma), device=device))
    return out[0].float().cpu().clamp(-1, 1)


def noise_words(s255: float) -> str:
    """A noise level for people: "a little noise" ... "mostly noise"."""
    if s255 <= 40:
        return "a little noise"
    if s255 <= 120:
        return "more noise"
    if s255 <= 250:
        return "a lot of noise"
    return "mostly noise"


def bell_svg(x0: torch.Tensor, noise: torch.Tensor, schedule, step: int) -> str:
    """The bell-curve scene at ``step``: the picture and its pixel histogram."""
    x_t = x_at_step(x0, noise, schedule, step)
    centres, dens = histogram(x_t)
    caption = "the clean photo (step 0)" if step == 0 else f"step {step} of {schedule.T}"
    title = ("pixel values of the photo" if step == 0 else
             f"pixel values at step {step}")
    return bell_figure(Tile(to_display(x_t), caption), centres, dens, title)


def guesses_svg(denoiser, x0: torch.Tensor, noise: torch.Tensor, schedule, device) -> str:
    """The one-step guesses: the photo under each noise of :data:`GUESS_NOISE_255` (top)
    and the network's one-call guess from it (below). Three levels, so that the pictures
    stay large beside the words."""
    x0 = x0.mean(0, keepdim=True) if getattr(denoiser, "channels", 3) == 1 else x0
    noise = noise[: x0.shape[0]]
    top, bottom = [], []
    for s255 in GUESS_NOISE_255:
        step = step_for_sigma(schedule, sigma_from_255(s255))
        x_t = x_at_step(x0, noise, schedule, step)
        guess = one_step_guess(denoiser, x_t, sigma_at_step(schedule, step), device)
        top.append(Tile(to_display(x_t), noise_words(s255)))
        bottom.append(Tile(to_display(guess)))
    return pictures_figure([top, bottom], row_labels=("noisy", "its guess"), caption_size=32)


def steer_label(info: ModelInfo) -> tuple[int, str]:
    """(class index, class name) the steering scene asks for."""
    names = class_names(info.card)
    k = min(STEER_CLASS, len(names) - 1)
    return k, names[k]


def steer_svgs(denoiser, info: ModelInfo, device) -> dict[float, str]:
    """The guidance knob: the same 16 starting points drawn at each of :data:`STEER_WS`."""
    label, name = steer_label(info)
    side = model_side(info)
    out = {}
    for w in STEER_WS:
        pics = generate(Guided(denoiser, label, w), (CREATE_N, _channels(denoiser), side, side),
                        STEER_STEPS, CREATE_SAMPLER, seed=STEER_SEED, device=device).clamp(-1, 1)
        grid = np.asarray(grid_image(pics, nrow=4))
        out[float(w)] = pictures_figure(
            [[Tile(grid, f"guidance {w:g}: {guidance_words(w)}", pixelated=True)]],
            title=f"asked for: {article(name)}", caption_size=34)
    return out


def guidance_words(w: float) -> str:
    if w == 0:
        return "the request is ignored"
    if w <= 1:
        return "follows the request"
    if w <= 4:
        return "pushed towards it"
    return "pushed very hard"


def article(name: str) -> str:
    """"a 7", "a Sneaker", "an Ankle boot"."""
    return ("an " if name[:1].lower() in "aeiou8" else "a ") + name


def compute_words(device) -> str:
    """Where this thread computes, in a few words: "GPU", "CPU, 1 thread"."""
    device = torch.device(device)
    if device.type != "cpu":
        return device_label(device)
    n = torch.get_num_threads()
    return f"CPU, {n} thread{'s' if n != 1 else ''}"


def _duration(s: float) -> str:
    """"4 ms", "0.25 s": a short time as people read it."""
    return f"{s * 1000:.0f} ms" if s < 0.1 else f"{s:.2f} s"


def _count_words(n: int) -> str:
    return {1: "one", 2: "two", 3: "three", 4: "four"}.get(n, str(n))


def cost_svg(denoiser, info: ModelInfo, device) -> tuple[str, list[float]]:
    """The cost of steps: the same :data:`COST_N` starting points drawn with each of
    :data:`COST_STEPS`, timed here (in the calling thread); (the figure, the seconds of
    each)."""
    side = model_side(info)
    tiles, secs = [], []
    shape = (COST_N, _channels(denoiser), side, side)
    generate(denoiser, shape, 2, COST_SAMPLER, seed=COST_SEED, device=device)  # warm up
    for k in COST_STEPS:
        t0 = time.perf_counter()
        pics = generate(denoiser, shape, k, COST_SAMPLER, seed=COST_SEED, device=device)
        secs.append(time.perf_counter() - t0)
        tiles.append(Tile(np.asarray(grid_image(pics.clamp(-1, 1), nrow=1)),
                          f"{k} step{'s' if k != 1 else ''}", pixelated=True))
    fig = bars_under(tiles, secs, [_duration(s) for s in secs],
                     f"The same {_count_words(COST_N)} pictures, drawn with more and more steps",
                     f"the time each took on this computer ({compute_words(device)})")
    return fig, secs


class LessonCompare(CompareJob):
    """The "Why diffusion?" comparison for the lesson: the page's run, but it takes no run
    slot (visitors' runs never queue behind it) and it steps aside while a live run of this
    server is going (see :meth:`LessonPrep.pause`)."""

    kind = "lesson_toy2d"
    slots = None

    def __init__(self, *args, pause: Callable[[], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pause = pause or (lambda: None)

    def _on_step(self, kind: str, step: int, losses: dict, snapshot) -> None:
        super()._on_step(kind, step, losses, snapshot)
        if step % 25 == 0:
            self.pause()


def live_runs() -> int:
    """Restore and create runs going in this server process now."""
    snap = counters.snapshot()
    return sum(max(snap.get(f"{k}_threads", 0), 0) for k in LIVE_KINDS)


#: in scene order, except the speed of the live scenes' models: measured once the browser has drawn
#: the first scenes (a measurement made while it renders comes out slow)
PARTS = ("photo", "bell", "guesses", "steer", "cost", "speeds", "gan")


class LessonPrep(Job):
    """Everything the lesson can compute ahead, in one background thread, part by part in
    scene order (:data:`PARTS`); a page reads a part with :meth:`part` (None while it is
    being made) and a part that failed with :meth:`problem`. It takes no run slot, and
    between parts (and during the 2-D training) it waits while a live restore or drawing
    runs in this server (:meth:`pause`), so that those finish in their time."""

    kind = "lesson_prep"
    slots = None
    use_gpu_lock = False
    failed_text = "Preparing the lesson failed"

    def __init__(self, device: str | torch.device = "cpu", toy2d_steps: int | None = None,
                 models: list[ModelInfo] | None = None, busy: Callable[[], int] = live_runs):
        super().__init__(device=device)
        self.toy2d_steps = toy2d_steps
        self.models = models
        self.busy = busy
        self.parts: dict[str, Any] = {}
        self.problems: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.current: str | None = None
        self.compare: LessonCompare | None = None

    def progress(self) -> dict[str, Any]:
        return {"ready": sorted(self.parts), "problems": dict(self.problems),
                "current": self.current, "seconds": dict(self.seconds)}

    def part(self, name: str) -> Any:
        with self._lock:
            return self.parts.get(name)

    def problem(self, name: str) -> str | None:
        with self._lock:
            return self.problems.get(name)

    def ready(self, name: str) -> bool:
        with self._lock:
            return name in self.parts or name in self.problems

    @property
    def all_ready(self) -> bool:
        return all(self.ready(p) for p in PARTS)

    def pause(self) -> None:
        """Wait (at most :data:`PAUSE_MAX_S`) while a live run of this server goes."""
        deadline = time.monotonic() + PAUSE_MAX_S
        while self.busy() > 0 and time.monotonic() < deadline and not self.should_stop():
            time.sleep(0.05)

    def work(self) -> bool:
        models = list_models() if self.models is None else self.models
        ctx: dict[str, Any] = {"models": models}
        for name in PARTS:
            if self.should_stop():
                return True
            self.pause()
            self.update(current=name)
            t0 = time.perf_counter()
            try:
                value = getattr(self, f"_make_{name}")(ctx)
            except Exception as e:  # noqa: BLE001 - one part's failure leaves the others
                with self._lock:
                    self.problems[name] = _problem_text(name, e)
                    self._changed()
                continue
            with self._lock:
                self.parts[name] = value
                self.seconds[name] = time.perf_counter() - t0
                self._changed()
        self.update(current=None)
        return False

    # ------------------------------------------------------------------ the parts
    def _make_photo(self, ctx) -> dict[str, Any]:
        big, name = lesson_photo(DISSOLVE_SIDE)
        small = fit_size(big, PHOTO_SIDE)
        schedule = default_schedule()
        ctx.update(x0=small, schedule=schedule, noise=draw_noise(small.shape, NOISE_SEED))
        return {"name": name, "x0": big, "noise": draw_noise(big.shape, NOISE_SEED),
                "schedule": schedule, "small": small}

    def _make_bell(self, ctx) -> dict[int, str]:
        self._need(ctx, "x0")
        return {s: bell_svg(ctx["x0"], ctx["noise"], ctx["schedule"], s) for s in BELL_STEPS}

    def _make_guesses(self, ctx) -> str:
        self._need(ctx, "x0")
        info = lesson_photo_model(ctx["models"])
        if info is None:
            raise LookupError("no photo model")
        den = open_model(info.name, self.device)
        return guesses_svg(den, ctx["x0"], ctx["noise"], ctx["schedule"], self.device)

    def _make_speeds(self, ctx) -> dict[str, Speed | None]:
        out = {}
        for role, info in (("restore", lesson_photo_model(ctx["models"])),
                           ("create", lesson_create_model(ctx["models"]))):
            out[role] = model_speed(info, self.device) if info is not None else None
        return out

    def _make_steer(self, ctx) -> dict[str, Any]:
        info = lesson_create_model(ctx["models"])
        if info is None:
            raise LookupError("no drawing model")
        den = open_model(info.name, self.device)
        return {"model": info.name, "label": steer_label(info)[1],
                "figures": steer_svgs(den, info, self.device)}

    def _make_cost(self, ctx) -> dict[str, Any]:
        info = lesson_create_model(ctx["models"])
        if info is None:
            raise LookupError("no drawing model")
        fig, secs = cost_svg(open_model(info.name, self.device), info, self.device)
        return {"model": info.name, "figure": fig, "seconds": secs}

    def _make_gan(self, ctx) -> dict[str, Any]:
        budget = toy2d.Budget()
        steps = self.toy2d_steps or budget.steps
        budget = toy2d.Budget(steps=steps, snapshot_every=max(1, steps // 10), snapshot_n=700)
        job = LessonCompare(TOY2D_DATASET, TOY2D_KINDS, budget, TOY2D_SEED,
                            label=toy2d.DATASETS[TOY2D_DATASET], pause=self.pause)
        self.update(compare=job)
        job.start()
        while not job.wait(0.5):
            if self.should_stop():
                job.stop()
        if job.result is None:
            raise RuntimeError(job.error or "the training stopped")
        return job.result

    @staticmethod
    def _need(ctx, key: str) -> None:
        if key not in ctx:
            raise LookupError("no photo")


def _problem_text(part: str, e: BaseException) -> str:
    """One sentence for a part that could not be made."""
    if isinstance(e, LookupError) and str(e).strip("'") == "no photo model":
        return ("No photo model is installed, so this scene has nothing to show. Put a model "
                "folder in models/ (see the README).")
    if isinstance(e, LookupError) and str(e).strip("'") == "no drawing model":
        return ("No model that draws on request is installed (see the Create page), so this "
                "scene has nothing to show.")
    if isinstance(e, LookupError) and str(e).strip("'") == "no photo":
        return "No built-in photo is installed, so this scene has nothing to show."
    if isinstance(e, ImageLoadError):
        return str(e)
    return f"This scene could not be prepared ({type(e).__name__})."


_PREP: list[LessonPrep] = []
_PREP_LOCK = threading.Lock()


def _stop_at_exit() -> None:
    """Stop the warm-up when the process ends (a thread still computing with PyTorch while
    the interpreter shuts down can abort the process)."""
    with _PREP_LOCK:
        preps = _PREP[:]
    for prep in preps:
        prep.stop()
        if prep.compare is not None:
            prep.compare.stop()
    for prep in preps:
        prep.wait(EXIT_WAIT_S)
        if prep.compare is not None:
            prep.compare.wait(EXIT_WAIT_S)


atexit.register(_stop_at_exit)


def shared_prep(device: str | torch.device = "cpu") -> LessonPrep:
    """The server's one :class:`LessonPrep`, started on the first call (and again if it
    failed as a whole); every visitor shares it."""
    with _PREP_LOCK:
        if not _PREP or _PREP[0].state == "failed":
            _PREP[:] = [LessonPrep(device).start()]
        return _PREP[0]


def install_prep(prep: LessonPrep | None) -> None:
    """Use ``prep`` as the server's (tests and benchmarks: a quicker one); None forgets it."""
    with _PREP_LOCK:
        _PREP[:] = [prep] if prep is not None else []


# ---------------------------------------------------------------------- words


def scene_words(scene: Scene, prep: LessonPrep | None) -> str:
    """The scene's words for the audience, with the facts the warm-up found filled in."""
    facts = {"world_sentence": "",
             "gan_sentence": "A GAN often finds only some of them; diffusion finds them all."}
    if "{world_sentence}" in scene.words:
        info = lesson_create_model(prep.models if prep is not None else None)
        title = str(info.card.get("world_title") or "").strip() if info is not None else ""
        if title:
            facts["world_sentence"] = f"This model learned from pictures of {title.lower()}."
    gan = prep.part("gan") if prep is not None else None
    if gan is not None and "gan" in gan["metrics"] and "diffusion" in gan["metrics"]:
        m, d = gan["metrics"]["gan"], gan["metrics"]["diffusion"]
        if m.n_modes:
            found = ("all of them, sharply" if d.modes_covered == d.n_modes
                     else f"{d.modes_covered} of them")
            facts["gan_sentence"] = f"The GAN found {m.modes_covered} of them; diffusion {found}."
    return scene.words.format(**facts).strip()


# ---------------------------------------------------------------------- scene 7: the 2-D models


def gan_svg(prep: LessonPrep) -> str | None:
    """The comparison: the finished models' samples with their scores, or while they train
    the latest samples; None before the training has drawn anything."""
    res = prep.part("gan")
    if res is not None:
        panels = []
        for kind in _story_order(res["kinds"]):
            m = res["metrics"][kind]
            sub = f"found {m.modes_covered} of {m.n_modes} clusters" if m.n_modes else ""
            panels.append(Panel(toy2d.MODELS[kind].label, res["samples"][kind],
                                COLOURS[kind], sub))
        pts = res["train"].points
        return scatter_figure(pts, panels, axis_ranges(pts), columns=2)
    job = prep.compare
    if job is None:
        return None
    snap = job.snapshot()
    if snap["train"] is None:
        return None
    panels = [Panel(toy2d.MODELS[k].label, snap["samples"].get(k), COLOURS[k],
                    f"learning: step {snap['steps'][k]} of {snap['total']}")
              for k in _story_order(snap["kinds"])]
    return scatter_figure(snap["train"], panels, axis_ranges(snap["train"]), columns=2)


def _story_order(kinds) -> list[str]:
    """The GAN and diffusion first (side by side: the contrast the scene is about)."""
    first = [k for k in ("gan", "diffusion") if k in kinds]
    return first + [k for k in kinds if k not in first]


# ---------------------------------------------------------------------- the live scenes


def live_speed(prep: LessonPrep | None, role: str) -> Speed | None:
    speeds = prep.part("speeds") if prep is not None else None
    return (speeds or {}).get(role)


@dataclass(frozen=True)
class RestorePlan:
    """The live restore: picture side, steps, the noise step it starts from, and its
    estimated seconds (None: not measured yet, so the cheapest settings)."""

    side: int
    steps: int
    start_step: int
    seconds: float | None


def restore_plan(speed: Speed | None, aspect: float = 1.0,
                 budget: float = LIVE_BUDGET_S) -> RestorePlan:
    """The richest rung of :data:`RESTORE_LADDER` estimated to finish within ``budget``
    seconds with ``speed`` (the cheapest without one); ``aspect``: the photo's height over
    width."""
    start = step_for_sigma(default_schedule(), sigma_from_255(RESTORE_NOISE_255))

    def shape(side: int) -> tuple[int, int, int]:
        return (3, max(8, round(side * min(aspect, 1.0))), max(8, round(side / max(aspect, 1.0))))

    def seconds(rung) -> float:
        return restore_estimate(speed, shape(rung[0]), start, rung[1], RESTORE_SAMPLER,
                                scored=True).seconds

    side, steps = pick_default(RESTORE_LADDER, seconds, budget if speed else None,
                               RESTORE_LADDER[-1])
    return RestorePlan(side, steps, start, seconds((side, steps)) if speed else None)


def start_restore(denoiser, photo: torch.Tensor, plan: RestorePlan, device,
                  alive=None, settings: dict | None = None) -> RestoreJob:
    """The live restore of ``photo`` (shrunk to the plan's side) in the background."""
    image = fit_size(photo, plan.side)
    if _channels(denoiser, image.shape[0]) == 1 and image.shape[0] == 3:
        image = image.mean(0, keepdim=True)
    return RestoreJob(denoiser, image, default_schedule(), plan.start_step, plan.steps,
                      sampler=RESTORE_SAMPLER, seed=NOISE_SEED, device=device,
                      settings=dict(settings or {}) | {"plan": plan}, alive=alive).start()


def restore_start_picture(job: RestoreJob) -> torch.Tensor:
    """Where the live restore starts: its picture under the noise of its start step."""
    if "start" not in job.cache:
        job.cache["start"] = x_at_step(job.image, draw_noise(job.image.shape, job.seed),
                                       job.schedule, job.step)
    return job.cache["start"]


def _kept_tile(job, name: str, picture: Callable[[], torch.Tensor], caption: str) -> Tile:
    """A picture that every redraw of a live figure shows again: encoded once per run."""
    if f"tile_{name}" not in job.cache:
        a = to_display(picture())
        job.cache[f"tile_{name}"] = Tile(a, caption, uri=image_uri(a))
    return job.cache[f"tile_{name}"]


def restore_figure(job: RestoreJob, snap: dict | None = None) -> str:
    """The live restore, two by two: where it started and the picture now (above), the
    network's current guess and the original (below); finished, the picture after the last
    step and the network's last guess."""
    start = _kept_tile(job, "start", lambda: restore_start_picture(job), "the noisy start")
    original = _kept_tile(job, "original", lambda: job.image, "the original")
    res = job.result
    if job.done and res is not None:
        last = res.frames[-1].x0_hat if res.frames else res.final
        return pictures_figure([[start, Tile(to_display(res.final), f"after {res.steps_run} steps")],
                                [Tile(to_display(last), "the network's last guess"), original]],
                               caption_size=30)
    latest = (snap or {}).get("latest")
    if latest is None:
        blank = np.full_like(start.image, 235)
        return pictures_figure([[start, Tile(start.image, "the picture now: starting",
                                             uri=start.uri)],
                                [Tile(blank, "the network's guess"), original]], caption_size=30)
    i, n = (snap or {}).get("i", 0), (snap or {}).get("n", job.n)
    return pictures_figure([[start, Tile(to_display(latest["x_t"]), f"now: step {i} of {n}")],
                            [Tile(to_display(latest["x0_hat"]), "the network's guess"), original]],
                           caption_size=30)


def run_where(job) -> str:
    """Where a run computes, in a few words: "CPU, 1 thread of 2", a GPU's name."""
    if job.device.type != "cpu":
        return device_label(job.device)
    t = job.plan.threads
    return f"CPU, {t} thread{'s' if t != 1 else ''} of {job.plan.cores}"


def live_status(job) -> str:
    """One line about a live scene's run (a :class:`RestoreJob` or :class:`CreateJob`)."""
    if job is None:
        return "Starting…"
    if job.state == "failed":
        return job.error or "The run failed."
    if not job.done:
        if job.state in ("new", "waiting"):
            return "Waiting for the computer (another run is going); it starts next."
        plan = job.settings.get("plan")
        about = f", about {plan.seconds:.0f} s" if getattr(plan, "seconds", None) else ""
        return f"Running live on this computer ({run_where(job)}{about})."
    res = job.result
    if res is None:
        return "Stopped before it started."
    if isinstance(job, RestoreJob):
        return (f"Done live: {res.steps_run} steps in {res.seconds:.1f} s "
                f"({job.image.shape[-1]} × {job.image.shape[-2]} px, {run_where(job)}).")
    return (f"Done live: {len(res.frames)} steps in {res.seconds:.1f} s ({run_where(job)}, "
            f"the {job.settings.get('model', '')} model); played back above.")


def create_plan(speed: Speed | None, info: ModelInfo, budget: float = LIVE_BUDGET_S) -> int:
    """Steps of the live drawing: the richest of :data:`CREATE_LADDER` estimated within
    ``budget`` (the cheapest without a speed)."""
    side = model_side(info)

    def seconds(steps: int) -> float:
        return create_estimate(speed, CREATE_N, side, steps, CREATE_SAMPLER, False).seconds

    return pick_default(CREATE_LADDER, seconds, budget if speed else None, CREATE_LADDER[-1])


def start_create(denoiser, info: ModelInfo, steps: int, seed: int, device, alive=None,
                 settings: dict | None = None) -> CreateJob:
    """The live drawing: 16 pictures from pure static, no request (so no guidance)."""
    return CreateJob(denoiser, -1, 0.0, steps, CREATE_SAMPLER, clamp_int(seed, 0, SEED_MAX, 0),
                     n=CREATE_N, size=model_side(info), sweep=(), device=device,
                     settings=dict(settings or {}) | {"model": info.name}, alive=alive).start()


def _grid(x: torch.Tensor) -> np.ndarray:
    return np.asarray(grid_image(x.clamp(-1, 1), nrow=4))


def create_figure(job: CreateJob, snap: dict | None = None) -> str:
    """The live drawing now or, finished, its steps played back from static to the finished
    pictures (the run itself is often over in a second)."""
    res: CreateResult | None = job.result
    title = "16 new pictures from pure static"
    if job.done and res is not None and res.frames:
        frames = _replay_frames(res)
        return replay_figure([Tile(_grid(f.x_t), pixelated=True) for f in frames[:-1]]
                             + [Tile(_grid(res.final), pixelated=True)],
                             [f"step {f.i + 1} of {len(res.frames)}" for f in frames[:-1]]
                             + [f"finished: {len(res.frames)} steps"], title=title)
    latest = (snap or {}).get("latest")
    if latest is None:
        noise = torch.randn((CREATE_N, *job.shape[1:]),
                            generator=torch.Generator().manual_seed(job.seed))
        return pictures_figure([[Tile(_grid(noise * 0.8), "pure static", pixelated=True)]],
                               title=title, caption_size=32, max_tile_h=600)
    return pictures_figure([[Tile(_grid(latest.x_t), f"step {latest.i + 1} of {job.n}",
                                  pixelated=True)]], title=title, caption_size=32, max_tile_h=600)


def _replay_frames(res: CreateResult) -> list:
    """At most :data:`REPLAY_FRAMES` frames of a finished drawing, evenly spread, the last
    one included (it stands for the finished pictures)."""
    n = len(res.frames)
    keep = sorted({round(k) for k in np.linspace(0, n - 1, min(n, REPLAY_FRAMES))})
    return [res.frames[k] for k in keep]


# ---------------------------------------------------------------------- not ready


def preparing_svg(scene: Scene, prep: LessonPrep | None) -> str:
    """The card a scene shows while its part is made (or when it cannot be)."""
    part = SCENE_PARTS.get(scene.key)
    problem = prep.problem(part) if (prep is not None and part) else None
    if problem:
        return message_figure(["This scene cannot be shown", *_wrap(problem, 56)])
    what = {"gan": "Training three small models (about a minute the first time)…"}.get(
        scene.key, "Computing it once for this server…")
    return message_figure(["Getting this scene ready", what])


#: the part of the warm-up each scene shows (the live scenes need only the speeds, and run
#: without them)
SCENE_PARTS = {"dissolve": "photo", "bell": "bell", "guess": "guesses", "restore": "photo",
               "create": None, "steer": "steer", "gan": "gan", "cost": "cost"}


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return lines + ([line] if line else [])
