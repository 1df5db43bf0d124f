"""Drawing pictures on request (the Create page) as a background
:class:`~diffusion_core.jobs.base.Job`.

The worker generates a grid of samples from pure noise with a conditional model steered by
classifier-free guidance (:class:`~diffusion_core.maths.samplers.Guided`), keeps every
step's state, x0 guess and the model's two guesses (told the label, not told) for the page,
then runs the guidance sweep: the same starting noise at several guidance strengths. No
streamlit here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from diffusion_core.jobs.base import Job
from diffusion_core.maths.samplers import Guided, StepInfo, StopSampling, generate, to_vp

#: the guidance strengths of the sweep strip
SWEEP = (0.0, 1.0, 2.0, 4.0, 8.0)


@dataclass
class CreateFrame:
    """One step of the run, on the CPU: the state (as a picture: the DDPM-scaled x_t), the
    x0 guess the sampler used, and the two guesses it was mixed from (None when the run
    asked for no label)."""

    i: int
    sigma: float
    x_t: torch.Tensor
    x0: torch.Tensor
    cond: torch.Tensor | None = None
    uncond: torch.Tensor | None = None


@dataclass
class CreateResult:
    final: torch.Tensor  # (N, C, H, W) in [-1, 1]
    frames: list[CreateFrame] = field(default_factory=list)
    sweep: list[tuple[float, torch.Tensor]] = field(default_factory=list)  # (w, pictures)
    seconds: float = 0.0
    stopped: bool = False


class CreateJob(Job):
    """One Create run in a daemon thread. ``label`` < 0 draws "anything" (no guidance, no
    sweep). ``sweep_n`` samples (the grid's first ones: the same starting noise) are drawn
    again at each guidance strength of ``sweep``."""

    kind = "create"

    def __init__(self, denoiser, label: int, guidance: float, steps: int, sampler: str,
                 seed: int = 0, n: int = 16, size: int = 32, sweep: tuple[float, ...] = SWEEP,
                 sweep_n: int = 4, device: str | torch.device = "cpu",
                 settings: dict | None = None, alive=None, grace_s: float | None = None):
        super().__init__(device=device, settings=settings, alive=alive, grace_s=grace_s)
        self.denoiser, self.label, self.guidance = denoiser, int(label), float(guidance)
        self.steps, self.sampler, self.seed = int(steps), sampler, int(seed)
        self.shape = (int(n), int(getattr(denoiser, "channels", 1)), int(size), int(size))
        self.sweep_ws = tuple(sweep) if self.label >= 0 else ()
        self.sweep_n = min(int(sweep_n), int(n))
        self.i, self.n = 0, self.steps
        self.phase = "drawing"
        self.latest: CreateFrame | None = None
        self.sweep_done: list[tuple[float, torch.Tensor]] = []
        self.result: CreateResult | None = None

    def progress(self) -> dict[str, Any]:
        return {"i": self.i, "n": self.n, "phase": self.phase, "latest": self.latest,
                "sweep": list(self.sweep_done), "sweep_total": len(self.sweep_ws)}

    def _model(self, w: float, both: bool = False):
        if self.label < 0:
            return self.denoiser
        return Guided(self.denoiser, self.label, w, both=both)

    def work(self) -> bool:
        t0 = time.perf_counter()
        model = self._model(self.guidance, both=True)
        frames: list[CreateFrame] = []

        def on_step(info: StepInfo) -> None:
            cpu = (lambda t: None if t is None else t.detach().float().cpu())
            guided = isinstance(model, Guided)
            f = CreateFrame(info.i, info.sigma, cpu(to_vp(info.x, info.sigma)),
                            cpu(info.denoised), cpu(model.last_cond) if guided else None,
                            cpu(model.last_uncond) if guided else None)
            frames.append(f)
            self.update(i=info.i + 1, n=info.n, latest=f)
            if self.should_stop():
                raise StopSampling

        final = generate(model, self.shape, self.steps, self.sampler, seed=self.seed,
                         device=self.device, callback=on_step).clamp(-1, 1)
        stopped = self.should_stop()
        sweep: list[tuple[float, torch.Tensor]] = []
        self.update(phase="sweep")
        for w in self.sweep_ws if not stopped else ():
            if self.should_stop():
                stopped = True
                break
            pics = generate(self._model(w), (self.sweep_n, *self.shape[1:]), self.steps,
                            self.sampler, seed=self.seed, device=self.device).clamp(-1, 1)
            sweep.append((w, pics))
            self.update(sweep_done=list(sweep))
        res = CreateResult(final, frames, sweep, time.perf_counter() - t0, stopped)
        self.update(result=res, phase="done")
        return stopped
