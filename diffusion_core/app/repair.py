"""The Repair page: its two forms as requests, the damage a visitor marks, the noise it
measures, and the words and tables it shows about a run. No streamlit here.

The runs themselves are :class:`~diffusion_core.jobs.repair.InpaintJob` and
:class:`~diffusion_core.jobs.repair.DenoiseJob`; their results are dicts of display-ready
pictures and numbers, which the functions at the end put into words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from diffusion_core.app.estimate import Estimate, denoise_estimate, inpaint_estimate, pick_default
from diffusion_core.app.settings import choose
from diffusion_core.jobs.repair import DenoiseRequest, InpaintRequest, digest
from diffusion_core.jobs.timing import Speed
from diffusion_core.maths.forward import sigma_at_step
from diffusion_core.media.masks import PRESETS, MaskError, load_mask, preset_mask
from diffusion_core.models.registry import ModelInfo, list_models
from diffusion_core.tasks.blind import (
    CLEAN_SIGMA_255,
    DENOISE_MODES,
    estimate_noise_sigma,
    noise_words,
    step_for_noise,
)
from diffusion_core.tasks.pictures import add_noise, fit_size
from diffusion_core.tasks.restore import default_schedule
from diffusion_core.units import SEED_MAX, clamp_float, clamp_int, sigma_from_255, sigma_to_255

REPAIR_SIZES = [64, 96, 128, 192, 256, 384, 512]
SCHEDULE = default_schedule()  # the schedule the Add-noise page starts with (linear, T = 1000)
MASK_SOURCES = {"preset": "Ready-made damage", "paint": "Paint the damage yourself",
                "upload": "Upload a mask"}
NOISE_SOURCES = {"add": "Add known noise to the picture (to try it out)",
                 "noisy": "My picture is already noisy"}
#: a first visit's (repair size, fill-in steps), richest first: the first whose fill-in (the
#: tab a visitor sees first) fits the budget (:func:`first_settings`); fixed without one
DEFAULT_LADDER = ((256, 50), (192, 50), (128, 50), (128, 30), (96, 30), (64, 20))
FIXED_DEFAULTS = (128, 50)
DEFAULT_JUMP, DEFAULT_RESAMPLE = 10, 1



#: what each tab says first, in words for a lay audience
INPAINT_INTRO = (
    "Mark the damaged part of the picture. The model then starts from pure noise and "
    "removes it step by step, but after every step the pixels we **know** are put back "
    "(with just as much noise as the rest at that step). Only the hole is left to the "
    "model, and it has to invent something that fits in with its surroundings. This is "
    "**RePaint** (Lugmayr et al. 2022).")
DENOISE_INTRO = (
    "A grainy photo or a noisy scan is a picture plus noise: exactly what the model "
    "learned to clean up. We first **measure how noisy** the picture is (from the "
    "finest-scale detail, where real pictures are mostly smooth and noise is not), find the "
    "step of the forward process with that much noise, and let the model run the reverse "
    "process from there, starting from your noisy picture itself.")

def working_picture(x_full: torch.Tensor, size) -> torch.Tensor:
    """The picture shrunk so that its longest side is the repair size (32..1024)."""
    return fit_size(x_full, clamp_int(size, 32, 1024, 128))


def first_settings(speed: Speed | None, budget: float | None) -> tuple[int, int]:
    """(repair size, fill-in steps) of a first visit: the richest of :data:`DEFAULT_LADDER`
    whose fill-in of a square colour picture is estimated within ``budget`` seconds on
    ``speed``; the fixed defaults without a speed or a budget."""
    def seconds(rung: tuple[int, int]) -> float:
        size, steps = rung
        return inpaint_estimate(speed, (3, size, size), steps, DEFAULT_JUMP,
                                DEFAULT_RESAMPLE).seconds

    return pick_default(DEFAULT_LADDER, seconds, budget if speed else None, FIXED_DEFAULTS)


def inpaint_time(request: InpaintRequest, speed: Speed | None) -> Estimate | None:
    """How long the fill-in of ``request`` will take (None: not known)."""
    if speed is None:
        return None
    return inpaint_estimate(speed, request.image.shape, request.steps, request.jump,
                            request.resample)


def denoise_time(request: DenoiseRequest, speed: Speed | None) -> Estimate | None:
    """How long the clean-up of ``request`` will take (None: not known). A picture with
    less noise than the model removes is left as it is (no model call)."""
    if speed is None:
        return None
    start = (step_for_noise(SCHEDULE, request.sigma)
             if sigma_to_255(request.sigma) >= CLEAN_SIGMA_255 else 0)
    return denoise_estimate(speed, request.noisy.shape, start, request.steps,
                            request.mode == "one_shot", int8=request.int8)


def seed_of(v) -> int:
    return clamp_int(v, 0, SEED_MAX, 0)


def repair_models() -> list[ModelInfo]:
    """The photo models (every model when there is none)."""
    models = list_models()
    return [m for m in models if m.kind == "photo"] or models


# --------------------------------------------------------------------------- the damage


@dataclass
class PaintedMask:
    """The damage a visitor paints over one picture (it starts empty for a new picture)."""

    key: tuple = ()
    mask: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    round: int = 0  # bumped by clear(), so that a page can offer a fresh canvas

    def for_picture(self, x: torch.Tensor) -> np.ndarray:
        _, h, w = x.shape
        if self.key != (digest(x), h, w):
            self.key, self.mask = (digest(x), h, w), np.zeros((h, w), dtype=bool)
        return self.mask

    def add(self, new: np.ndarray | None) -> bool:
        """Add a selection to the damage; True if it marked anything new."""
        if new is None or not (new & ~self.mask).any():
            return False
        self.mask = self.mask | new
        return True

    def clear(self) -> None:
        self.mask = np.zeros_like(self.mask)
        self.round += 1


def damage(source: str, x: torch.Tensor, seed: int, preset: str | None = None,
           painted: PaintedMask | None = None, upload: bytes | None = None
           ) -> tuple[torch.Tensor, str | None]:
    """(the damage mask (H,W) bool for ``source``, why an uploaded mask cannot be used)."""
    _, h, w = x.shape
    empty = torch.zeros((h, w), dtype=torch.bool)
    if source == "preset":
        return preset_mask(choose(preset, PRESETS, "blocks"), h, w, seed=seed), None
    if source == "paint" and painted is not None:
        return torch.from_numpy(painted.for_picture(x).copy()), None
    if source == "upload" and upload is not None:
        try:
            return load_mask(upload, size=(h, w)), None
        except MaskError as e:
            return empty, str(e)
    return empty, None


def inpaint_request(x: torch.Tensor, mask: torch.Tensor, mask_source: str,
                    form: Mapping[str, Any], seed: int, known: bool) -> InpaintRequest:
    """The inpainting form's values (``repair_inpaint_steps``, ``repair_resample``,
    ``repair_jump``, ``repair_eta``, ``repair_model``), clamped: widget bounds are not
    trusted."""
    return InpaintRequest(x, mask, clamp_int(form.get("repair_inpaint_steps"), 5, 500, 50),
                          clamp_int(form.get("repair_resample"), 1, 10, DEFAULT_RESAMPLE),
                          clamp_int(form.get("repair_jump"), 1, 50, DEFAULT_JUMP),
                          clamp_float(form.get("repair_eta"), 0.0, 1.0, 1.0), seed_of(seed),
                          form.get("repair_model") or "", bool(known), mask_source)


def inpaint_problem(mask: torch.Tensor, mask_error: str | None) -> str | None:
    """Why the damage cannot be repaired: "mask" (unusable upload), "empty" or "full"."""
    frac = float(mask.float().mean()) if mask.numel() else 0.0
    if mask_error:
        return "mask"
    if frac == 0:
        return "empty"
    return "full" if frac >= 0.99 else None


# --------------------------------------------------------------------------- the noise


def noisy_picture(x: torch.Tensor, source: str, amount, seed: int
                  ) -> tuple[torch.Tensor, torch.Tensor | None, int | None]:
    """(the noisy picture, the clean one if known, the noise added on the 0-255 scale)."""
    if source == "add":
        amount = clamp_int(amount, 1, 100, 25)
        return add_noise(x, amount, seed=seed), x, amount
    return x, None, None


@dataclass(frozen=True)
class NoiseReading:
    """How noisy a picture is: measured, and the level (and step) a run starts from."""

    estimated: float  # model units
    sigma: float  # the level used: the estimate, or the visitor's own
    manual: bool

    @property
    def estimated_255(self) -> float:
        return sigma_to_255(self.estimated)

    @property
    def step(self) -> int:
        return step_for_noise(SCHEDULE, self.sigma)

    def summary(self, added: int | None) -> str:
        """A paragraph (markdown) about the measurement and where the model starts."""
        text = (f"**Measured noise: about {self.estimated_255:.1f}** on the 0–255 scale"
                f"{f' (you added {added})' if added is not None else ''}: "
                f"*{noise_words(self.estimated_255)}*.  \n"
                f"That much noise is **step {self.step} of {SCHEDULE.T}** on the Add-noise page "
                f"(σ = {sigma_at_step(SCHEDULE, self.step):.3f}); the model starts there.")
        return text + (f"  \nUsing your level: {sigma_to_255(self.sigma):.1f}."
                       if self.manual else "")


def read_noise(noisy: torch.Tensor, manual_255=None) -> NoiseReading:
    """Measure the noise; ``manual_255`` (0.5..150 on the 0-255 scale) overrides it."""
    est = estimate_noise_sigma(noisy)
    if manual_255 is None:
        return NoiseReading(est, est, False)
    return NoiseReading(est, sigma_from_255(clamp_float(manual_255, 0.5, 150.0, 0.5)), True)


def manual_start(reading_255: float) -> float:
    """Where the "noise level" box starts: the measured level, rounded."""
    return float(round(max(reading_255, 0.5), 1))


def denoise_request(noisy: torch.Tensor, clean: torch.Tensor | None, reading: NoiseReading,
                    form: Mapping[str, Any], seed: int, on_cpu: bool,
                    source: tuple) -> DenoiseRequest:
    """The clean-up form's values (``repair_denoise_mode``, ``repair_denoise_steps``,
    ``repair_model``, ``repair_int8``), clamped. The 8-bit network is only for one-shot runs
    on the CPU. ``source`` names what the noisy picture was made of."""
    mode = choose(form.get("repair_denoise_mode"), DENOISE_MODES, "iterative")
    return DenoiseRequest(noisy, reading.sigma, clean, mode,
                          clamp_int(form.get("repair_denoise_steps"), 1, 100, 10), seed_of(seed),
                          form.get("repair_model") or "",
                          mode == "one_shot" and on_cpu and bool(form.get("repair_int8")),
                          (digest(noisy), *source))


# --------------------------------------------------------------------------- words


def db(v: float | None) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return "perfect" if v == float("inf") else f"{v:.1f} dB"


def waiting_text(state: str) -> str | None:
    return {"new": "Starting…",
            "waiting": "Waiting: another run is using the model; yours starts next."}.get(state)


def inpaint_progress(snap: dict) -> tuple[float, str]:
    """(share done, the words on the progress bar) of an inpainting run."""
    i, n = snap["i"], max(snap["n"], 1)
    if waiting_text(snap["state"]):
        return 0.0, waiting_text(snap["state"])
    if snap["stage"] == "model" or snap["sigma_255"] is None:
        return 0.0, "Starting from pure noise..."
    if snap["stage"] == "baseline":
        return 1.0, "The smooth fill, for comparison..."
    return i / n, (f"Model call {i} of {n} (noise level {snap['sigma_255']:.0f} on the 0–255 "
                   "scale)")


def denoise_progress(snap: dict) -> tuple[float, str]:
    """(share done, the words on the progress bar) of a clean-up run."""
    if waiting_text(snap["state"]):
        return 0.0, waiting_text(snap["state"])
    if snap["stage"] == "int8":
        return 0.0, "Preparing the 8-bit network for this noise level..."
    if snap["stage"] == "baseline":
        return 1.0, "Non-local means, for comparison..."
    if snap["n"] == 0:
        return 0.0, "Removing noise..."
    return snap["i"] / snap["n"], f"Step {snap['i']} of {snap['n']}"


def stopped_text(out: dict, what: str) -> str | None:
    """A sentence for a run that was stopped (None if it ran to the end)."""
    if not out.get("stopped"):
        return None
    return f"Stopped early: the {what} below is the model's latest guess."


def inpaint_pictures(out: dict) -> list[tuple[np.ndarray, str]]:
    items = [(out["damaged"], "Damaged"),
             (out["diffusion"], f"Diffusion (RePaint), {out['seconds']['diffusion']:.1f} s"),
             (out["biharmonic"], f"Smooth fill (biharmonic), {out['seconds']['biharmonic']:.2f} s")]
    return items + ([(out["original"], "Before the damage")] if out["known"] else [])


def inpaint_table(out: dict) -> list[dict]:
    """One row per method: model calls, seconds, PSNR in the damaged part and overall."""
    rows = []
    for key, name, calls in (("diffusion", "Diffusion (RePaint)", out["calls"]),
                             ("biharmonic", "Smooth fill (biharmonic)", 0)):
        rows.append({"Method": name, "Model calls": calls,
                     "Seconds": round(out["seconds"][key], 2),
                     "PSNR in the damaged part": db(out["psnr"][key]) if out["known"] else "–",
                     "PSNR, whole picture": db(out["psnr_all"][key]) if out["known"] else "–"})
    return rows


def denoise_pictures(out: dict) -> list[tuple[np.ndarray, str]]:
    p = out["psnr"]
    how = "in one go" if out["mode"] == "one_shot" else f"{out['steps_run']} steps"
    how += ", 8-bit" if out.get("int8") else ""
    items = [(out["noisy"], "Noisy" + (f", {db(p['noisy'])}" if p else "")),
             (out["diffusion"], f"Diffusion from step {out['step']} ({how}), "
                                f"{out['seconds']['diffusion']:.1f} s"
                                + (f", {db(p['diffusion'])}" if p else "")),
             (out["nlm"], f"Non-local means, {out['seconds']['nlm']:.2f} s"
                          + (f", {db(p['nlm'])}" if p else ""))]
    return items + ([(out["clean"], "The clean original")] if out["clean"] is not None else [])


def denoise_verdict(out: dict) -> str:
    """What the scores say (or how to judge without a clean original)."""
    p = out["psnr"]
    if not p:
        return ("No clean original is known for an already-noisy picture, so judge by "
                "eye: look at smooth areas (grain gone?) and edges (still sharp?).")
    gain = p["diffusion"] - p["noisy"]
    return (f"PSNR against the clean original (higher is closer). The diffusion model "
            f"{'gained' if gain >= 0 else 'lost'} {abs(gain):.1f} dB over the noisy "
            "picture. Non-local means is a classic method that averages similar-looking "
            "patches from all over the picture; it is given the same noise level.")
