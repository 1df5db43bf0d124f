"""The Repair page's two runs as background :class:`~diffusion_core.jobs.base.Job` s.

* :class:`InpaintJob`: fill in the damage of an :class:`InpaintRequest` with RePaint, then
  the classical smooth fill beside it;
* :class:`DenoiseJob`: clean up the picture of a :class:`DenoiseRequest` (blind denoising
  from the matching step, or in one go, optionally with the 8-bit CPU network), then
  non-local means beside it.

Each job loads its model in its own thread (from the one process-wide cache), reports its
progress for the page to poll, and ends with ``result``: a dict of display-ready pictures
(uint8 arrays) and numbers, what the page keeps in its session. Stop keeps the model's
latest estimate. No streamlit here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from diffusion_core.jobs.base import Job
from diffusion_core.maths.samplers import StepInfo
from diffusion_core.media.masks import mask_fraction
from diffusion_core.media.viz import to_display
from diffusion_core.models.registry import ModelLoadError, get_denoiser, get_int8_denoiser
from diffusion_core.tasks.baselines import denoise_nlm, inpaint_biharmonic
from diffusion_core.tasks.blind import blind_denoise
from diffusion_core.tasks.inpaint import inpaint
from diffusion_core.tasks.metrics import masked_psnr, psnr
from diffusion_core.tasks.pictures import damaged_view
from diffusion_core.units import sigma_to_255

LIVE_PREVIEWS = 8  # the inpainting run shows its current guess about this many times


def digest(t: torch.Tensor, n: int = 16) -> str:
    """A short fingerprint of a tensor's values (for "made with these settings?")."""
    return hashlib.sha1(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:n]


@dataclass(frozen=True, eq=False)
class InpaintRequest:
    image: torch.Tensor  # (C,H,W) in [-1, 1]
    mask: torch.Tensor  # (H,W) bool, True = damaged
    steps: int = 50
    resample: int = 1
    jump: int = 10
    eta: float = 1.0
    seed: int = 0
    model: str = "natural"
    known: bool = True  # do we know what was under the damage (so PSNR means something)?
    mask_source: str = "preset"

    @property
    def calls(self) -> int:
        return self.steps * self.resample

    @property
    def key(self) -> tuple:
        """Everything the result depends on: equal keys, equal results."""
        _, h, w = self.image.shape
        return (digest(self.image), h, w, self.mask_source, digest(self.mask, 12), self.steps,
                self.resample, self.jump, self.eta, self.seed, self.model)


@dataclass(frozen=True, eq=False)
class DenoiseRequest:
    noisy: torch.Tensor  # (C,H,W) in [-1, 1]
    sigma: float  # the noise level to remove, model units
    clean: torch.Tensor | None = None  # the picture before the noise, when known
    mode: str = "iterative"
    steps: int = 10
    seed: int = 0
    model: str = "natural"
    int8: bool = False  # the 8-bit CPU network (one-shot mode on the CPU only)
    source: tuple = ()  # what the noisy picture was made from, for :attr:`key`

    @property
    def key(self) -> tuple:
        return (*self.source, round(self.sigma, 6), self.mode, self.steps, self.model,
                bool(self.int8))


def _load(model: str, device: torch.device):
    return get_denoiser(model, str(device))


class _RepairJob(Job):
    def __init__(self, request, device: str | torch.device = "cpu", alive=None,
                 grace_s: float | None = None):
        super().__init__(device=device, alive=alive, grace_s=grace_s)
        self.request = request
        self.stage = "model"  # model, then the job's own stages
        self.i, self.n = 0, 0
        self.result: dict[str, Any] | None = None

    def explain(self, e: BaseException) -> str | None:
        return str(e) if isinstance(e, ModelLoadError) else None


class InpaintJob(_RepairJob):
    """RePaint on :attr:`request` (an :class:`InpaintRequest`), then the smooth fill."""

    kind = "inpaint"

    def __init__(self, request: InpaintRequest, device="cpu", alive=None, grace_s=None):
        super().__init__(request, device, alive, grace_s)
        self.n = request.calls
        self.sigma_255: float | None = None
        self.preview: np.ndarray | None = None  # the model's current guess, for display

    def progress(self) -> dict[str, Any]:
        return {"stage": self.stage, "i": self.i, "n": self.n, "sigma_255": self.sigma_255,
                "preview": self.preview}

    def _on_call(self, info: StepInfo) -> None:
        i, n = info.i, info.n
        shown = to_display(info.composite) if i % max(n // LIVE_PREVIEWS, 1) == 0 else None
        with self._lock:
            self.i, self.n, self.sigma_255 = i + 1, n, sigma_to_255(info.sigma)
            if shown is not None:
                self.preview = shown
            self._changed()

    def work(self) -> bool:
        r = self.request
        den = _load(r.model, self.device)
        self.update(stage="diffusion")
        res = inpaint(den, r.image, r.mask, steps=r.steps, resample=r.resample,
                      jump_length=r.jump, eta=r.eta, seed=r.seed, device=self.device,
                      callback=self._on_call, should_stop=self.should_stop)
        self.update(stage="baseline")
        base = inpaint_biharmonic(r.image, r.mask)
        x, m = r.image, r.mask
        self.update(result={
            "settings": r.key, "known": r.known, "stopped": res.stopped,
            "damaged": to_display(damaged_view(x, m)), "original": to_display(x),
            "diffusion": to_display(res.final), "biharmonic": to_display(base.final),
            "psnr": {"diffusion": masked_psnr(res.final, x, m),
                     "biharmonic": masked_psnr(base.final, x, m)},
            "psnr_all": {"diffusion": psnr(res.final, x), "biharmonic": psnr(base.final, x)},
            "seconds": {"diffusion": res.seconds, "biharmonic": base.seconds},
            "calls": res.calls, "calls_planned": res.calls_planned,
            "frac": mask_fraction(m),
        })
        return res.stopped


class DenoiseJob(_RepairJob):
    """Blind denoising of :attr:`request` (a :class:`DenoiseRequest`), then non-local means.
    With ``int8`` it first prepares the 8-bit network for the noise level; where that is not
    possible it says why in :attr:`note` and runs at full precision."""

    kind = "denoise"

    def __init__(self, request: DenoiseRequest, device="cpu", alive=None, grace_s=None):
        super().__init__(request, device, alive, grace_s)
        self.note: str | None = None

    def progress(self) -> dict[str, Any]:
        return {"stage": self.stage, "i": self.i, "n": self.n, "note": self.note}

    def _on_step(self, info: StepInfo) -> None:
        self.update(i=info.i + 1, n=max(info.n, 1))

    def _int8(self, den):
        """The 8-bit network ready for this noise level, or ``den`` (and a note) if not."""
        self.update(stage="int8")
        try:
            den8 = get_int8_denoiser(self.request.model)
            den8.body(self.request.sigma)
            return den8, True
        except Exception as e:  # noqa: BLE001 - fall back to full precision, say why
            self.update(note=f"Fast mode is not available here ({e}); using full precision.")
            return den, False

    def work(self) -> bool:
        r = self.request
        den = _load(r.model, self.device)
        int8 = False
        if r.int8:
            den, int8 = self._int8(den)
        self.update(stage="diffusion")
        res = blind_denoise(den, r.noisy, sigma=r.sigma, mode=r.mode, steps=r.steps,
                            seed=r.seed, device=self.device, callback=self._on_step,
                            should_stop=self.should_stop, clean=r.clean)
        self.update(stage="baseline")
        base = denoise_nlm(r.noisy, res.sigma)
        y, c = r.noisy, r.clean
        self.update(result={
            "settings": r.key, "noisy": to_display(y), "stopped": res.stopped,
            "diffusion": to_display(res.final), "nlm": to_display(base.final),
            "clean": to_display(c) if c is not None else None,
            "psnr": ({"noisy": psnr(y, c), "diffusion": psnr(res.final, c),
                      "nlm": psnr(base.final, c)} if c is not None else None),
            "seconds": {"diffusion": res.seconds, "nlm": base.seconds},
            "step": res.step, "sigma_255": res.sigma_255, "mode": res.mode,
            "steps_run": res.steps_run, "int8": int8, "note": self.note,
        })
        return res.stopped
