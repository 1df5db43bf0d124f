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
from diffusion_core.training.worlds import EXAMPLES_FILE
from diffusion_core.units import SEED_MAX, clamp_float, clamp_int

#: the worlds on offer, in menu order; the first is the default (clothes: "draw me a sneaker"
#: is the request a room recognises at once)
WORLD_ORDER = ("fashion", "mnist", "doodles")
PREFERRED_MODEL = WORLD_ORDER[0]
GRID_N = 16  # a 4 x 4 grid
SIDE = 32  # pictures of a model whose card gives no size (digits_cond draws 32 x 32)
STEPS_MIN, STEPS_MAX, DEFAULT_STEPS = 5, 100, 20
GUIDANCE_MAX, DEFAULT_GUIDANCE = 10.0, 3.0
#: DPM-Solver++ (2M): one model call per step, so 20 steps cost half of Heun's 39 calls (a
#: browser run of 16 stays under 2 s), and second order, so its pictures are as varied and as
#: real as Heun's (doodles at w = 3: near-copies 4.1 % against Heun's 4.4 % and DDIM's 6.1 %;
#: two-sample test 0.754, 0.756, 0.803)
DEFAULT_SAMPLER = "dpmpp_2m"
SWEEP_N = 4  # pictures drawn again at each guidance strength of the sweep
#: a first visit's steps, richest first: the first whose run (a class asked for, guidance
#: and sweep included) fits the budget (:func:`first_steps`); fixed without one
DEFAULT_LADDER = (20, 15, 12, 10, 8, 6, 5)
SHOW_SIDE = 256  # small pictures on screen are enlarged to about this many pixels
#: each sample of a grid on screen is this many pixels wide (nearest neighbour): readable on a
#: projector from the back of a room
SAMPLE_PX = 112


def _rank(m: ModelInfo) -> tuple:
    shipped_world = m.source == "shipped" and m.name in WORLD_ORDER
    return (not shipped_world, WORLD_ORDER.index(m.name) if shipped_world else 0,
            m.source != "shipped", m.name)


def create_models(models: list[ModelInfo] | None = None) -> list[ModelInfo]:
    """The models that draw on request (their card lists classes): the shipped worlds first
    (clothes, digits, doodles), then other shipped models, then the visitor's own."""
    found = [m for m in (list_models() if models is None else models) if is_conditional(m.card)]
    return sorted(found, key=_rank)


def world_text(info: ModelInfo) -> str:
    """A world picker entry: "Clothes", "Digits", "Doodles"; a model without a world title:
    its name ("mine (yours)", "digits_cond (small 8x8 digits)")."""
    if info.source == "shipped" and info.card.get("world_title"):
        return str(info.card["world_title"])
    if info.name == "digits_cond":
        return "Small digits (digits_cond, 8×8 digits enlarged)"
    return info.label


def model_size(info: ModelInfo) -> int:
    """The side of the pictures a model draws (its card's ``size``; else 32)."""
    try:
        return int(info.card.get("size") or SIDE)
    except (TypeError, ValueError):
        return SIDE


def first_steps(speed: Speed | None, budget: float | None) -> int:
    """Steps of a first visit: the most of :data:`DEFAULT_LADDER` whose default run (a
    class asked for, with the default sampler, at the default world's size) is estimated
    within ``budget`` seconds on ``speed``; :data:`DEFAULT_STEPS` without a speed or a
    budget."""
    def seconds(steps: int) -> float:
        return _estimate(speed, steps, DEFAULT_SAMPLER, guided=True, side=SIDE).seconds

    return pick_default(DEFAULT_LADDER, seconds, budget if speed else None, DEFAULT_STEPS)


def _estimate(speed: Speed, steps: int, sampler: str, guided: bool, side: int) -> Estimate:
    """A Create run: the grid, and the sweep when a label was asked for."""
    return create_estimate(speed, GRID_N, side, steps, sampler, guided,
                           sweep=SWEEP if guided else (), sweep_n=SWEEP_N)


#: what a world asks for first (a class a room recognises at once)
FIRST_ASK = {"fashion": "Sneaker", "mnist": "7", "doodles": "cat", "digits_cond": "7"}


def default_what(info: ModelInfo) -> str:
    """What a model is asked for until the visitor picks: its world's showpiece class, else
    its first class."""
    names = class_names(info.card)
    want = FIRST_ASK.get(str(info.card.get("world") or info.name))
    return want if want in names else (names[0] if names else ANYTHING)


def pick_world(models: list[ModelInfo], name: str | None) -> ModelInfo:
    """The model a (possibly stale or hostile) picker value names; the first world else."""
    return next((m for m in models if m.name == name), models[0])


def what_choices(info: ModelInfo) -> list[str]:
    """What the visitor may ask for: "anything", then each class name of the model."""
    return [ANYTHING, *class_names(info.card)]


def what_text(choice: str) -> str:
    """A menu entry: "anything (surprise me)", "a 7", "a sneaker", "an ankle boot",
    "a T-shirt/top" (names in lower case unless they start with a capital pair)."""
    if choice == ANYTHING:
        return "anything (surprise me)"
    name = choice if choice[:2].isupper() else choice.lower()
    return f"{'an' if name[:1].lower() in 'aeiou8' else 'a'} {name}"


@functools.lru_cache(maxsize=1)
def _real_digits() -> dict[str, np.ndarray]:
    images, labels = digits_dataset()
    return {str(c): to_display(images[int(np.flatnonzero(labels == c)[0])]) for c in range(10)}


@functools.lru_cache(maxsize=16)
def _strip_tiles(path: str, mtime: float, k: int) -> tuple[np.ndarray, ...]:
    strip = np.asarray(Image.open(path).convert("L"))
    side = strip.shape[0]
    if strip.shape[1] != side * k:
        return ()
    return tuple(strip[:, i * side:(i + 1) * side] for i in range(k))


def class_examples(info: ModelInfo, choices: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """A real picture of each class the model draws (the strip ``examples.png`` shipped in
    its folder; the first sklearn digit of each class for ``digits_cond``), and their names,
    to show beside the choices; ([], []) when the model has none."""
    names = class_names(info.card)
    strip = info.path / EXAMPLES_FILE
    tiles: tuple[np.ndarray, ...] = ()
    if strip.is_file():
        try:
            tiles = _strip_tiles(str(strip), strip.stat().st_mtime, len(names))
        except (OSError, ValueError):
            tiles = ()
    if tiles:
        big = [np.asarray(Image.fromarray(t).resize((84, 84), Image.NEAREST)) for t in tiles]
        return [big[names.index(c)] for c in choices if c in names], \
            [c for c in choices if c in names]
    if info.name == "digits_cond":
        real = _real_digits()
        shown = [c for c in choices if c in real]
        return [real[c] for c in shown], shown
    return [], []


@dataclass(frozen=True)
class CreateRequest:
    """One run's settings, each clamped to what the page allows (see :meth:`clamped`)."""

    model: str
    size: int  # the side of the pictures the model draws
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
        what = choose(str(what), what_choices(info), default_what(info))
        return cls(model=info.name, size=model_size(info), what=what,
                   label=resolve_label(info.card, what),
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
                         self.seed, n=GRID_N, size=self.size, sweep=SWEEP, sweep_n=SWEEP_N,
                         device=self.run_device(),
                         settings=self.widget_values() | {"model": self.model},
                         alive=alive).start()

    def estimate(self, speed: Speed | None) -> Estimate | None:
        """How long this run will take with ``speed`` (None: not known)."""
        return None if speed is None else _estimate(speed, self.steps, self.sampler,
                                                    guided=self.label >= 0, side=self.size)

    def summary(self) -> str:
        asked = (f"asked for **{what_text(self.what)}** with guidance {self.guidance:g}"
                 if self.label >= 0 else "asked for **anything** (no label, so no guidance)")
        return (f"{GRID_N} pictures, {asked}, {self.steps} steps of "
                f"{SPECS[self.sampler].short_name}, seed {self.seed}.")


# ---------------------------------------------------------------- what to show


def big_grid(x: torch.Tensor, nrow: int = 4) -> Image.Image:
    """A grid of samples for a projector: each sample enlarged to about :data:`SAMPLE_PX`
    pixels with nearest-neighbour (sharp pixels, no blur), on a dark gap."""
    side = x.shape[-1]
    scale = max(1, -(-SAMPLE_PX // side))
    g = grid_image(x, nrow=nrow, pad=1)
    return g.resize((g.width * scale, g.height * scale), Image.NEAREST)


def _grid(x: torch.Tensor | None):
    return None if x is None else big_grid(x)


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
    big = (lambda t: png_bytes(grid_image(t[k:k + 1], pad=0).resize((224, 224), Image.NEAREST)))
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
    return png_bytes(big_grid(result.final))


def animation_gif(result: CreateResult) -> bytes:
    """The grid of the model's guesses at every step, then the finished grid."""
    grids = [f.x0 for f in result.frames] + [result.final]
    return frames_gif([np.asarray(grid_image(x, nrow=4)) for x in grids], min_side=SHOW_SIDE)


# ---------------------------------------------------------------- where it draws

#: where a run is drawn: in the visitor's browser (diffusion_core.browser, when it can) or on
#: the server (the CreateJob above)
WHERE = ("browser", "server")
#: the browser's limits are the page's own (diffusion_core.browser.create.browser_settings)
BROWSER_LIMITS = {"steps_min": STEPS_MIN, "steps_max": STEPS_MAX, "guidance_max": GUIDANCE_MAX,
                  "grid_n": GRID_N, "sweep_n": SWEEP_N}
SERVER_CHOSEN = "Drawing on the server (chosen in the sidebar)."


def where_text(where: str) -> str:
    return "this computer (in the browser)" if where == "browser" else "the server"


# ---------------------------------------------------------------- words

INTRO = (
    "Pick a world, ask for something in it (a sneaker, a cat, a 7) and watch a small "
    "diffusion model draw it out of pure static. The same network can be **told what to "
    "draw** (a label) or **told nothing**. At every step it makes both guesses, and the "
    "*guidance* knob decides how hard to push from the second towards the first: the trick "
    "behind every text-to-image system (classifier-free guidance, Ho & Salimans 2022). Here "
    "the labels are class names instead of whole sentences.")

OPENED_WORDS = (
    "**Told the label** is the network's guess of the finished picture when it is told what "
    "to draw; **not told** is its guess when it is told nothing. The **guided mix** starts "
    "from the untold guess and moves towards the told one, *guidance* times as far: at 1 it "
    "lands exactly on the told guess, at 3 it goes three times as far in that direction, "
    "exaggerating whatever makes this picture look like the thing asked for.")

SWEEP_WORDS = (
    f"The same starting noise, drawn again at guidance {', '.join(f'{w:g}' for w in SWEEP)}. "
    "At 0 the label is ignored: the model draws whatever the noise suggests. At 1 it "
    "follows the label but may wobble. Higher values follow it more and more strictly, and "
    "the pictures look more and more alike. Too high (8) and the shapes get harsh and "
    "over-saturated: the push overshoots what real pictures look like.")


def guidance_words(w: float) -> str:
    """What a guidance strength does, in a sentence."""
    if w == 0:
        return "0: the label is ignored; the model draws anything from its world."
    if w < 1:
        return f"{w:g}: a weak pull towards the label."
    if w == 1:
        return "1: the model simply follows the label, no extra push."
    if w <= 4:
        return f"{w:g}: an extra push towards the label: clearer pictures, a little less variety."
    return f"{w:g}: a very strong push: near-identical, over-drawn pictures."
