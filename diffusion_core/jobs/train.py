"""Training in the background, for the Train page: one job per server process, live progress.

* **One job per server process.** :data:`TRAIN_SLOT` has room for one; a second start while
  one runs is refused with a clear message (a 2-core CPU cannot train two models at once,
  and a GPU should not be shared by strangers either). Training never queues.
* :class:`TrainingJob` runs :func:`diffusion_core.training.train.train` on the job base
  (:mod:`diffusion_core.jobs.base`); its callback fills the step, loss history, steps/s,
  ETA, device and the latest preview made from the EMA weights every few steps, which a page
  polls with :meth:`TrainingJob.snapshot`. Closing the browser does not matter: the thread
  keeps going and checkpoints are on disk.
* **Stop** sets a flag: ``train`` writes a checkpoint at the next step, and the model is
  exported as it is. **Resume** continues the step count from that checkpoint (also after a
  server restart); see :mod:`diffusion_core.training.runs`.

No streamlit here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from diffusion_core.jobs.base import Job, SlotPool
from diffusion_core.models.registry import user_models_dir
from diffusion_core.system.device import pick_device
from diffusion_core.training.presets import draws_pictures
from diffusion_core.training.previews import draw_preview, loss_curve, photo_preview_set
from diffusion_core.training.runs import (
    RunPlan,
    export_model,
    more_steps_for,
    plan_new_run,
    plan_resume,
    runs_dir,
    saved_card,
)
from diffusion_core.training.train import TrainConfig, hardware_string, train

TRAIN_SLOT = SlotPool(1, "training")
_LOCK = threading.Lock()  # one start or resume at a time
_JOB: TrainingJob | None = None


@dataclass
class StartResult:
    ok: bool
    message: str
    job: TrainingJob | None = None


class TrainingJob(Job):
    """One training run in a daemon thread. Use :func:`start_training` /
    :func:`resume_training` rather than building one directly."""

    kind = "train"
    slots = TRAIN_SLOT
    use_gpu_lock = False  # a training holds the GPU for hours; it is one job at a time anyway
    running_state = "starting"  # then running (first step), saving, done/stopped/failed
    failed_text = "Training failed"
    gpu_oom_text = ("The GPU ran out of memory: choose a smaller model or batch. The last "
                    "checkpoint is kept; Resume continues from it.")
    ram_oom_text = "The computer ran out of memory: choose a smaller model or batch."

    def __init__(self, name: str, cfg: TrainConfig, meta: dict, resume: bool = False,
                 history: list[tuple[int, float]] | None = None, start_step: int = 0):
        super().__init__(device="cpu")  # the training picks its own device
        self.name = name
        self.cfg = cfg
        self.meta = dict(meta)
        self.resume = resume
        self.run_dir = runs_dir() / name
        self.model_dir = user_models_dir() / name
        self.preview_every = int(meta.get("preview_every", 100))
        self.state = "starting"
        self.step = start_step
        self.start_step = start_step
        self.total = cfg.steps
        self.losses: list[tuple[int, float]] = list(history or [])
        self.lr = 0.0
        self.steps_per_s = 0.0
        self.eta_s: float | None = None
        self.elapsed_s = 0.0
        self.hardware = ""
        self.preview = None  # PIL image
        self.preview_step: int | None = None
        self.card: dict | None = None
        self._photo_set: torch.Tensor | None = None

    @classmethod
    def from_plan(cls, plan: RunPlan) -> TrainingJob:
        return cls(plan.name, plan.cfg, plan.meta, resume=plan.resume, history=plan.history,
                   start_step=plan.start_step)

    def explain(self, e: BaseException) -> str | None:
        if "No training images" in str(e):
            return "There are no usable pictures to train on. Upload some pictures first."
        if "class-conditional training needs labelled data" in str(e):
            return ("This version cannot train a conditional model on these pictures yet; "
                    "untick “conditional” to train without labels.")
        return None

    def progress(self) -> dict[str, Any]:
        return {
            "name": self.name, "step": self.step, "start_step": self.start_step,
            "total": self.total, "lr": self.lr, "steps_per_s": self.steps_per_s,
            "eta_s": self.eta_s, "elapsed_s": self.elapsed_s, "device": self.hardware,
            "preview": self.preview, "preview_step": self.preview_step, "card": self.card,
            "model_dir": str(self.model_dir), "kind": self.cfg.kind,
            "dataset": self.meta.get("dataset"), "preview_every": self.preview_every,
            "losses": list(self.losses),
        }

    def snapshot(self, max_points: int = 400) -> dict[str, Any]:
        """A consistent copy of the progress; the loss curve is averaged into at most
        ``max_points`` points."""
        snap = super().snapshot()
        losses = snap.pop("losses")
        snap["last_loss"] = losses[-1][1] if losses else None
        snap["curve_steps"], snap["curve_loss"] = loss_curve(losses, max_points)
        return snap

    # ------------------------------------------------------------------ worker
    def _on_step(self, info) -> None:
        preview = None
        ema = getattr(info, "ema", None)
        due = (info.step % self.preview_every == 0 or info.step == info.total
               or info.step == self.start_step + 1)  # (the first: what it makes untrained)
        if ema is not None and due:
            try:
                preview = draw_preview(ema, self.cfg, next(ema.parameters()).device,
                                       self._photo_set)
            except Exception:  # noqa: BLE001 - a preview must never stop the training
                preview = None
        with self._lock:
            if self.state == "starting":
                self.state = "running"
            self.step = info.step
            self.total = info.total
            self.losses.append((info.step, float(info.loss)))
            self.lr = info.lr
            self.steps_per_s = info.steps_per_s
            self.eta_s = info.eta_s
            self.elapsed_s = info.elapsed_s
            if preview is not None:
                self.preview, self.preview_step = preview, info.step
            self._changed()

    def work(self) -> bool:
        prev_threads = torch.get_num_threads()
        try:
            if self.cfg.threads:
                torch.set_num_threads(self.cfg.threads)
            self.update(hardware=hardware_string(pick_device(self.cfg.device)))
            if not draws_pictures(self.cfg.kind):
                folder = self.run_dir / "data"
                self._photo_set = photo_preview_set(folder if folder.is_dir() else None)
            summary = train(self.cfg, self.run_dir, resume=self.resume, callback=self._on_step,
                            should_stop=self.should_stop, log=lambda *_: None)
            self.update(state="saving", step=int(summary["step"]))
            if summary["step"] > self.start_step:
                card = export_model(self.run_dir, {
                    "data": self.meta.get("data_description", ""),
                    "trained_with": "the Train page", "preset": self.meta.get("preset"),
                    "dataset": self.meta.get("dataset"), "hardware": self.hardware,
                    "stopped_early": bool(summary["stopped"]),
                    **({"classes": list(self.meta["classes"])} if self.meta.get("classes")
                       and self.cfg.net.get("num_classes") else {})})
            else:  # nothing new to save: the model as it was (if any)
                card = saved_card(self.name)
            self.update(card=card)
            return bool(summary["stopped"])
        finally:
            torch.set_num_threads(prev_threads)  # (it is also the default of new threads)


# --------------------------------------------------------------------------- the registry


def current_job() -> TrainingJob | None:
    """The latest job of this server process (running or finished), if any."""
    return _JOB


def running_job() -> TrainingJob | None:
    job = _JOB
    return job if job is not None and not job.done else None


def _busy() -> StartResult | None:
    holders = [j for j in TRAIN_SLOT.holders() if isinstance(j, TrainingJob)]
    job = holders[0] if holders else running_job()
    if job is None and TRAIN_SLOT.free > 0:
        return None
    msg = ("A training job is running" + (f" (“{job.name}”, step {job.step:,} of "
                                          f"{job.total:,})" if job is not None else "")
           + "; wait for it to finish or stop it before starting another.")
    return StartResult(False, msg, job)


def _launch(plan: RunPlan, message: str) -> StartResult:
    global _JOB
    if plan.problem is not None:
        return StartResult(False, plan.problem)
    job = TrainingJob.from_plan(plan)
    if not job.try_start():
        return _busy() or StartResult(False, "A training job is running.")
    _JOB = job
    return StartResult(True, message, job)


def start_training(name: str, preset: str, overrides: dict | None = None,
                   data_folder: str | Path | None = None, replace: bool = False,
                   conditional: bool = False) -> StartResult:
    """Start a new job (see :func:`diffusion_core.training.runs.plan_new_run`; with
    ``conditional`` a class-conditional model when the data has classes); refused while
    another one runs."""
    with _LOCK:
        busy = _busy()
        if busy is not None:
            return busy
        plan = plan_new_run(name, preset, overrides, data_folder, replace, conditional)
        return _launch(plan, f"Training “{plan.name}” started.")


def resume_training(name: str, more_steps: int | None = None) -> StartResult:
    """Continue a run from its checkpoint; the step count goes on from there. A finished
    run needs ``more_steps`` (added to where it stopped)."""
    with _LOCK:
        busy = _busy()
        if busy is not None:
            return busy
        plan = plan_resume(name, more_steps)
        return _launch(plan, f"Training “{plan.name}” resumed at step {plan.start_step:,}.")


def resume_or_extend(name: str, steps_setting) -> StartResult:
    """The page's Resume button: an unfinished run continues to its end; a finished one
    trains ``steps_setting`` more steps ("Train longer")."""
    return resume_training(name, more_steps=more_steps_for(name, steps_setting))


def stop_training() -> bool:
    """Ask the running job (if any) to stop; it writes a checkpoint and saves the model."""
    job = running_job()
    if job is None:
        return False
    job.stop()
    return True

