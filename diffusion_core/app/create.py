"""The Create page: ask a model for a picture of something, turn the guidance knob, watch.

What to run (:class:`CreateRequest`, every widget value clamped), the pictures to show while
it runs and after (:func:`live_grids`, :func:`opened_up`, :func:`sweep_strip`), the words
for a lay audience, and the downloads. The run itself is a
:class:`~diffusion_core.jobs.create.CreateJob`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from diffusion_core.app.estimate import Estimate, create_estimate, pick_default
from diffusion_core.app.models import device_options, run_device
from diffusion_core.app.settings import choose
from diffusion_core.jobs.create import SWEEP, CreateJob, CreateResult
from diffusion_core.jobs.timing import Speed
from diffusion_core.maths.samplers import SPECS
from diffusion_core.media.convert import from_uint8
from diffusion_core.media.export import frames_gif
from diffusion_core.media.viz import grid_image, png_bytes, strip_image, to_display
from diffusion_core.models.labels import ANYTHING, class_names, is_conditional, resolve_label
from diffusion_core.models.registry import ModelInfo, list_models
from diffusion_core.training.digits import digits_dataset
from diffusion_core.units import SEED_MAX, clamp_float, clamp_int

PREFERRED_MODEL = "digits_cond"
GRID_N = 16  # a 4 x 4 grid
SIDE = 32  # the digits models draw 32 x 32
STEPS_MIN, STEPS_MAX, DEFAULT_STEPS = 5, 100, 20
GUIDANCE_MAX, DEFAULT_GUIDANCE = 10.0, 3.0
DEFAULT_SAMPLER = "heun"
SWEEP_N = 4  # pictures drawn again at each guidance strength of the sweep
#: a first visit's steps, richest first: the first whose run (a digit asked for, guidance
#: and sweep included) fits the budget (:func:`first_steps`); fixed without one
DEFAULT_LADDER = (20, 15, 12, 10, 8, 6, 5)
SHOW_SIDE = 256  # pictures on screen are enlarged to about this many pixels


def create_models(models: list[ModelInfo] | None = None) -> list[ModelInfo]:
    """The models that draw on request (their card lists classes), the shipped one first."""
    found = [m for m in (list_models() if models is None else models) if is_conditional(m.card)]
    return sorted(found, key=lambda m: (m.name != PREFERRED_MODEL, m.source != "shipped", m.name))


def first_steps(speed: Speed | None, budget: float | None) -> int:
    """Steps of a first visit: the most of :data:`DEFAULT_LADDER` whose default run (a
    digit asked for, with the default sampler) is estimated within ``budget`` seconds on
    ``speed``; :data:`DEFAULT_STEPS` without a speed or a budget."""
    def seconds(steps: int) -> float:
        return _estimate(speed, steps, DEFAULT_SAMPLER, guided=True).seconds

    return pick_default(DEFAULT_LADDER, seconds, budget if speed else None, DEFAULT_STEPS)


def _estimate(speed: Speed, steps: int, sampler: str, guided: bool) -> Estimate:
    """A Create run: the grid, and the sweep when a label was asked for."""
    return create_estimate(speed, GRID_N, SIDE, steps, sampler, guided,
                           sweep=SWEEP if guided else (), sweep_n=SWEEP_N)


def what_choices(info: ModelInfo) -> list[str]:
    """What the visitor may ask for: "anything", then each class name of the model."""
    return [ANYTHING, *class_names(info.card)]


def what_text(choice: str) -> str:
    """A menu entry: "anything (surprise me)" or "a 7"."""
    return "anything (surprise me)" if choice == ANYTHING else f"a {choice}"


@functools.lru_cache(maxsize=1)
def _real_examples() -> dict[str, np.ndarray]:
    images, labels = digits_dataset()
    return {str(c): to_display(images[int(np.flatnonzero(labels == c)[0])]) for c in range(10)}


def class_examples(choices: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """A real handwritten digit (the first of its class in the data set) for each choice
    that is a digit, and their names, to show beside the choices."""
    real = _real_examples()
    names = [c for c in choices if c in real]
    return [real[c] for c in names], names


@dataclass(frozen=True)
class CreateRequest:
    """One run's settings, each clamped to what the page allows (see :meth:`clamped`)."""

    model: str
    what: str  # "anything" or a class name of the model
    label: int  # -1 for anything
    guidance: float
    steps: int
    sampler: str
    seed: int
    device: str

    @classmethod
    def clamped(cls, *, info: ModelInfo, what=ANYTHING, guidance=DEFAULT_GUIDANCE,
                steps=DEFAULT_STEPS, sampler=DEFAULT_SAMPLER, seed=0,
                device="auto") -> CreateRequest:
        """A request from raw page values (any of which may be out of range or nonsense)."""
        what = choose(str(what), what_choices(info), ANYTHING)
        return cls(model=info.name, what=what, label=resolve_label(info.card, what),
                   guidance=round(clamp_float(guidance, 0.0, GUIDANCE_MAX, DEFAULT_GUIDANCE), 2),
                   steps=clamp_int(steps, STEPS_MIN, STEPS_MAX, DEFAULT_STEPS),
                   sampler=choose(sampler, list(SPECS), DEFAULT_SAMPLER),
                   seed=clamp_int(seed, 0, SEED_MAX, 0),
                   device=choose(device, device_options(), "auto"))

    def widget_values(self) -> dict[str, Any]:
        return {"what": self.what, "guidance": self.guidance, "steps": self.steps,
                "sampler": self.sampler, "seed": self.seed}

    def run_device(self) -> torch.device:
        return run_device(self.device)

    def start(self, denoiser, alive=None) -> CreateJob:
        """Start the run in the background (it queues when the server is busy)."""
        return CreateJob(denoiser, self.label, self.guidance, self.steps, self.sampler,
                         self.seed, n=GRID_N, size=SIDE, sweep=SWEEP, sweep_n=SWEEP_N,
                         device=self.run_device(),
                         settings=self.widget_values() | {"model": self.model},
                         alive=alive).start()

    def estimate(self, speed: Speed | None) -> Estimate | None:
        """How long this run will take with ``speed`` (None: not known)."""
        return None if speed is None else _estimate(speed, self.steps, self.sampler,
                                                    guided=self.label >= 0)

    def summary(self) -> str:
        asked = (f"asked for **{what_text(self.what)}** with guidance {self.guidance:g}"
                 if self.label >= 0 else "asked for **anything** (no label, so no guidance)")
        return (f"{GRID_N} pictures, {asked}, {self.steps} steps of "
                f"{SPECS[self.sampler].short_name}, seed {self.seed}.")


# ---------------------------------------------------------------- what to show


def _grid(x: torch.Tensor | None):
    return None if x is None else grid_image(x, nrow=4).resize((SHOW_SIDE, SHOW_SIDE))


def progress(snap: dict) -> tuple[float, str]:
    """The progress bar's (fraction, text) for a job snapshot."""
    if snap["phase"] == "sweep" and snap["sweep_total"]:
        k = len(snap["sweep"])
        return k / snap["sweep_total"], (f"Drawing the guidance sweep: {k} of "
                                         f"{snap['sweep_total']} strengths")
    if snap["state"] == "waiting":
        return 0.0, "Waiting for a free slot (other visitors are drawing)…"
    return snap["i"] / max(snap["n"], 1), f"Step {snap['i']} of {snap['n']}"


def live_grids(snap: dict) -> tuple[Any, Any]:
    """(the pictures as they are now, the model's guess of the finished pictures) as 4 x 4
    grids for the latest step; (None, None) before the first."""
    f = snap.get("latest")
    return (None, None) if f is None else (_grid(f.x_t), _grid(f.x0))


def opened_up(result: CreateResult, sample: int, step: int) -> dict[str, Any] | None:
    """One sample at one step opened up: its guess when told the label, its guess with no
    label, and the guided mix, enlarged; None when the run asked for no label."""
    if not result.frames:
        return None
    f = result.frames[clamp_int(step, 0, len(result.frames) - 1, 0)]
    if f.cond is None or f.uncond is None:
        return None
    k = clamp_int(sample, 0, len(f.x0) - 1, 0)
    big = (lambda t: png_bytes(grid_image(t[k:k + 1], pad=0).resize((160, 160))))
    return {"cond": big(f.cond), "uncond": big(f.uncond), "mix": big(f.x0),
            "sigma": f.sigma, "i": f.i}


def sweep_strip(result: CreateResult) -> bytes | None:
    """The guidance sweep as one strip: a column per strength, the same samples in rows."""
    if not result.sweep:
        return None
    cols = [from_uint8(np.asarray(grid_image(pics, nrow=1, pad=2))) for _, pics in result.sweep]
    strip = strip_image(cols, [f"w = {w:g}" for w, _ in result.sweep])
    return png_bytes(strip.resize((strip.width * 3, strip.height * 3), Image.NEAREST))


def final_grid_png(result: CreateResult) -> bytes:
    return png_bytes(grid_image(result.final, nrow=4))


def animation_gif(result: CreateResult) -> bytes:
    """The grid of the model's guesses at every step, then the finished grid."""
    grids = [f.x0 for f in result.frames] + [result.final]
    return frames_gif([np.asarray(grid_image(x, nrow=4)) for x in grids], min_side=SHOW_SIDE)


# ---------------------------------------------------------------- words

INTRO = (
    "Ask for a digit and watch a small diffusion model draw it from pure noise. The same "
    "network can be **told what to draw** (a label) or **told nothing**. At every step it "
    "makes both guesses, and the *guidance* knob decides how hard to push from the second "
    "towards the first: the trick behind every text-to-image system (classifier-free "
    "guidance, Ho & Salimans 2022). Here the labels are the digits 0 to 9 instead of words.")

OPENED_WORDS = (
    "**Told the label** is the network's guess of the finished picture when it is told what "
    "to draw; **not told** is its guess when it is told nothing. The **guided mix** starts "
    "from the untold guess and moves towards the told one, *guidance* times as far: at 1 it "
    "lands exactly on the told guess, at 3 it goes three times as far in that direction, "
    "exaggerating whatever makes this picture look like the digit asked for.")

SWEEP_WORDS = (
    f"The same starting noise, drawn again at guidance {', '.join(f'{w:g}' for w in SWEEP)}. "
    "At 0 the label is ignored: the model draws whatever digit the noise suggests. At 1 it "
    "follows the label but may wobble. Higher values follow it more and more strictly, and "
    "the pictures look more and more alike. Too high (8) and the strokes get thick and "
    "over-saturated: the push overshoots what real handwriting looks like.")


def guidance_words(w: float) -> str:
    """What a guidance strength does, in a sentence."""
    if w == 0:
        return "0: the label is ignored; the model draws any digit."
    if w < 1:
        return f"{w:g}: a weak pull towards the label."
    if w == 1:
        return "1: the model simply follows the label, no extra push."
    if w <= 4:
        return f"{w:g}: an extra push towards the label: clearer digits, a little less variety."
    return f"{w:g}: a very strong push: near-identical, over-drawn digits."
