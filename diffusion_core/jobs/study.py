"""A sampler-versus-steps study (:func:`~diffusion_core.tasks.steps_study.sampler_vs_steps`)
as a background :class:`~diffusion_core.jobs.base.Job`, for the Cost-of-steps page to poll
and stop. It shares the process-wide run slots with the other pages' runs. No streamlit."""

from __future__ import annotations

from typing import Any

import torch

from diffusion_core.jobs.base import ReverseJob
from diffusion_core.maths.samplers import StepInfo
from diffusion_core.maths.schedules import Schedule
from diffusion_core.tasks.steps_study import planned_calls, sampler_vs_steps


class StudyJob(ReverseJob):
    """One study in a daemon thread: ``rows`` grows as runs finish; Stop keeps them."""

    kind = "study"

    def __init__(self, denoiser, image: torch.Tensor, schedule: Schedule, step: int,
                 samplers, steps_list, seed: int = 0, reference_steps: int = 250,
                 device: str | torch.device = "cpu", settings: dict | None = None,
                 alive=None, grace_s: float | None = None):
        super().__init__(denoiser, image, schedule, step, seed, device=device, settings=settings,
                         alive=alive, grace_s=grace_s)
        self.samplers, self.steps_list = list(samplers), list(steps_list)
        self.reference_steps = int(reference_steps)
        self.total = planned_calls(self.step, self.samplers, self.steps_list, reference_steps)
        self.calls_done = 0
        self.current: tuple[str, int] | None = None  # (sampler, steps); None: the reference
        self.rows: list[dict] = []

    def progress(self) -> dict[str, Any]:
        return {"calls_done": self.calls_done, "total": self.total, "current": self.current,
                "rows": list(self.rows)}

    def _on_progress(self, info: StepInfo) -> None:
        with self._lock:
            self.calls_done = info.calls_done
            self.total = info.calls_total
            self.current = None if info.phase == "reference" else (info.sampler, info.steps)
            if info.row is not None:
                self.rows.append(info.row)
            self._changed()

    def work(self) -> None:
        rows = sampler_vs_steps(self.denoiser, self.image, self.schedule, self.step,
                                self.samplers, self.steps_list, self.seed,
                                reference_steps=self.reference_steps,
                                callback=self._on_progress, should_stop=self.should_stop,
                                device=self.device)
        self.update(rows=rows)
