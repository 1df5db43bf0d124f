"""Training in the background, for the Train page: presets, one job at a time, live progress.

* **One job per server process.** A module-level lock guards the current job; a second
  start while one runs is refused with a clear message (a 2-core CPU cannot train two
  models at once, and a GPU should not be shared by strangers either).
* **A daemon thread** runs :func:`diffusion_core.training.train.train`; its callback fills a
  :class:`TrainingJob` (step, loss history, steps/s, ETA, device, the latest preview made
  from the EMA weights every few steps) that a page polls with :meth:`TrainingJob.snapshot`.
  Closing the browser does not matter: the thread keeps going and checkpoints are on disk.
* **Stop** sets a flag: ``train`` writes a checkpoint at the next step. **Resume** continues
  the step count from that checkpoint (also after a server restart).
* **Where things go.** A job's run folder (checkpoints, log, a copy of uploaded pictures) is
  ``user_models_dir()/.runs/<name>``; on completion or stop the EMA weights and a card are
  exported to ``user_models_dir()/<name>/`` so ``registry.list_models()`` (and so every
  other page) offers the model at once. Nothing is written anywhere else.

No streamlit here.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffusion_core.models.registry import list_models, sanitize_name, user_models_dir
from diffusion_core.training.train import TrainConfig, export_checkpoint, hardware_string, pick_device, train

RUNS = ".runs"
UPLOADS = ".uploads"

DATASETS = {
    "digits": "Built-in handwritten digits",
    "photos": "Built-in photos + synthetic pictures",
    "own": "Your own pictures",
}

# Network sizes; in_channels is filled in from the dataset (1 for digits, 3 for photos).
MODEL_SIZES: dict[str, dict] = {
    "tiny": dict(base=8, mults=[1, 2], blocks=[1, 1], emb_dim=16),
    "small": dict(base=32, mults=[1, 2, 2], blocks=[1, 1, 1], emb_dim=64),
    "medium": dict(base=32, mults=[1, 2, 2], blocks=[2, 2, 2], emb_dim=128),
    "large": dict(base=48, mults=[1, 2, 4], blocks=[2, 2, 4], emb_dim=128),
}
MODEL_SIZE_LABELS = {
    "tiny": "Tiny (a quick test; learns little)",
    "small": "Small (fast on a CPU)",
    "medium": "Medium (the shipped digits model's size)",
    "large": "Large (the shipped photo model's size; for a GPU)",
}
LR_SCHEDULES = {
    "cosine": "Warm up, then slow down towards the end (cosine)",
    "constant": "Warm up, then constant",
}

# Server-side bounds for every advanced setting (the widgets' own bounds are not trusted).
LIMITS = {
    "steps": (10, 200_000),
    "batch": (1, 256),
    "lr": (1e-5, 1e-2),
    "patch": (32, 128),
    "preview_every": (10, 20_000),
}

# Digit previews: generated from pure noise. Photo previews: a noisy crop and its clean-up.
PREVIEW_SIGMA = 2 * 50 / 255  # "50 on the 0-255 scale"

_DIGITS_BASE = dict(kind="digits", data=[], patch=32, lr_warmup=100, ema_decay=0.995,
                    grad_clip=1.0, p_focus=0.0, p_mean=-1.0, p_std=1.4, p_gray=0.0)
_PHOTO_BASE = dict(kind="photo", lr_warmup=200, ema_decay=0.998, grad_clip=1.0, p_focus=0.6,
                   focus_lo=0.02, focus_hi=1.0, p_mean=-1.2, p_std=1.2, p_gray=0.15)


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    dataset: str  # a key of DATASETS
    size: str  # a key of MODEL_SIZES
    config: dict  # TrainConfig fields (besides net, name and data)
    blurb: str
    schedule: str = "cosine"
    preview_every: int = 100
    gpu: bool = False


PRESETS: dict[str, Preset] = {p.key: p for p in (
    # Measured on a 2-core Xeon with one training thread: 3,000 steps took 177 s of CPU time
    # and its samples pass the digits classifier check (see the Train page's issue notes).
    Preset("digits", "Digits (about 3 minutes on a 2-core CPU)", "digits", "small",
           dict(_DIGITS_BASE, steps=3000, batch=32, lr=1e-3),
           "A small network learns the 1,797 handwritten digits that ship with scikit-learn. "
           "After about three minutes it draws recognisable digits from pure noise.",
           preview_every=200),
    Preset("photos", "Photos + synthetic (a few minutes)", "photos", "small",
           dict(_PHOTO_BASE, steps=1500, batch=16, patch=64, lr=1e-3),
           "A small network learns to clean up noisy crops of the photos that ship with the "
           "app plus synthetic 'dead leaves' pictures. A few minutes give a modest denoiser "
           "(the shipped photo model trained for hours).", preview_every=100),
    Preset("own", "Your own images (a few minutes)", "own", "small",
           dict(_PHOTO_BASE, steps=1500, batch=16, patch=64, lr=1e-3),
           "A small network learns to clean up noisy crops of your pictures. More (and more "
           "varied) pictures help; a few minutes give a modest denoiser.", preview_every=100),
    Preset("digits_gpu", "Digits, longer (for a GPU)", "digits", "medium",
           dict(_DIGITS_BASE, steps=6000, batch=128, lr=1e-3),
           "The shipped digits model's network, trained longer with bigger batches: sharper, "
           "more varied digits. On a 2-core CPU this would take about 40 minutes.",
           preview_every=500, gpu=True),
    Preset("photos_gpu", "Photos + synthetic, longer (for a GPU)", "photos", "large",
           dict(_PHOTO_BASE, steps=20_000, batch=32, patch=96, lr=4e-4),
           "The shipped photo model's network, trained for 20,000 steps. Needs a GPU: on a "
           "2-core CPU it would take about 16 hours.", preview_every=1000, gpu=True),
    Preset("own_gpu", "Your own images, longer (for a GPU)", "own", "large",
           dict(_PHOTO_BASE, steps=12_000, batch=32, patch=96, lr=4e-4),
           "The shipped photo model's network on your pictures, 12,000 steps. Needs a GPU: "
           "on a 2-core CPU it would take about 10 hours.",
           preview_every=1000, gpu=True),
)}


def presets_for(dataset: str) -> list[Preset]:
    return [p for p in PRESETS.values() if p.dataset == dataset]


def runs_dir() -> Path:
    return user_models_dir() / RUNS


def uploads_dir() -> Path:
    """Where the page keeps pictures uploaded for a job that has not started yet."""
    return user_models_dir() / UPLOADS


def prune_uploads(keep: Path | None = None, max_age_s: float = 2 * 86400) -> None:
    """Forget upload folders nobody has touched for a while (sessions that went away)."""
    base = uploads_dir()
    if not base.is_dir():
        return
    now = time.time()
    for d in base.iterdir():
        try:
            if d.is_dir() and d != keep and now - d.stat().st_mtime > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            continue


def auto_threads() -> int:
    """CPU threads for a training job: all cores but one, so the pages stay responsive (on a
    2-core machine: one). Two jobs' worth of threads on too few cores (e.g. training next to
    a Restore run, or a busy machine) makes both many times slower, not a little."""
    return max(1, (os.cpu_count() or 1) - 1)


def _clamp_int(v, lo: int, hi: int, default: int) -> int:
    try:
        v = int(v)
    except (TypeError, ValueError, OverflowError):
        return default
    return max(lo, min(hi, v))


def _clamp_float(v, lo: float, hi: float, default: float) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(v):
        return default
    return max(lo, min(hi, v))


def effective_settings(preset: str, overrides: dict | None = None) -> dict:
    """The preset's settings with the user's overrides applied and clamped: steps, batch,
    lr, size, schedule, patch, preview_every. Unknown keys and bad values are ignored."""
    p = PRESETS.get(preset) or PRESETS["digits"]
    o = dict(overrides or {})
    s = {"steps": p.config["steps"], "batch": p.config["batch"], "lr": p.config["lr"],
         "size": p.size, "schedule": p.schedule, "patch": p.config.get("patch", 32),
         "preview_every": p.preview_every}
    for k in ("steps", "batch", "patch", "preview_every"):
        if o.get(k) is not None:
            s[k] = _clamp_int(o[k], *LIMITS[k], s[k])
    if o.get("lr") is not None:
        s["lr"] = _clamp_float(o["lr"], *LIMITS["lr"], s["lr"])
    if o.get("size") in MODEL_SIZES:
        s["size"] = o["size"]
    if o.get("schedule") in LR_SCHEDULES:
        s["schedule"] = o["schedule"]
    if p.dataset == "digits":
        s["patch"] = 32
    return s


def build_config(name: str, preset: str, overrides: dict | None = None,
                 data: list[str] | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a preset and (clamped) overrides."""
    p = PRESETS.get(preset) or PRESETS["digits"]
    s = effective_settings(p.key, overrides)
    cfg = dict(p.config)
    steps = s["steps"]
    cfg.update(steps=steps, batch=s["batch"], lr=s["lr"], patch=s["patch"])
    cfg["lr_warmup"] = min(int(cfg.get("lr_warmup", 100)), max(1, steps // 5))
    cfg["lr_decay_start"] = max(1, steps // 2) if s["schedule"] == "cosine" else 0
    net = dict(MODEL_SIZES[s["size"]], in_channels=1 if p.dataset == "digits" else 3)
    if data is not None:
        cfg["data"] = list(data)
    # checkpoints about every 30 s on a CPU; previews are drawn by the job, not by train()
    cfg.update(name=name, net=net, ckpt_every=max(20, min(500, steps // 10)), log_every=10,
               eval_every=0, sample_every=0, threads=auto_threads(), device="auto")
    return TrainConfig.from_dict(cfg)


def _photo_sources() -> list[str]:
    from diffusion_core.training.data import default_train400

    srcs = ["bundled@0.5", "deadleaves@0.5"]
    if default_train400().is_dir():
        srcs = ["train400@0.4", "bundled@0.3", "deadleaves@0.3"]
    return srcs


def describe_dataset(dataset: str, n_images: int | None = None) -> str:
    if dataset == "digits":
        return "1,797 handwritten digits from scikit-learn (8×8, shown at 32×32)"
    if dataset == "photos":
        from diffusion_core.training.data import bundled_photo_paths, default_train400

        s = f"{len(bundled_photo_paths())} photos bundled with scikit-image/scikit-learn"
        if default_train400().is_dir():
            s = "the 400 gray photos of Train400, " + s
        return s + " and 200 synthetic 'dead leaves' pictures"
    return f"{n_images or 0} of your own pictures"


# --------------------------------------------------------------------------- previews


def dataset_preview(dataset: str, folder: str | Path | None = None, n: int = 16,
                    side: int = 64) -> tuple[torch.Tensor, int]:
    """(up to n example training pictures (N,C,side,side) in [-1,1], how many there are)."""
    if dataset == "digits":
        from diffusion_core.training.digits import digits_dataset

        imgs, _ = digits_dataset()
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(imgs), generator=g)[:n]
        return imgs[idx], len(imgs)
    from diffusion_core.media.uploads import list_images, preview_batch

    if dataset == "own":
        if folder is None:
            return torch.zeros(0, 3, side, side), 0
        return preview_batch(folder, n, side), len(list_images(folder))
    from diffusion_core.media.images import ImageLoadError, load_image
    from diffusion_core.training.data import bundled_photo_paths, dead_leaves

    out = []
    paths = bundled_photo_paths()
    for p in paths[: max(0, n - 4)]:
        try:
            t = load_image(p, max_side=4 * side, mode="rgb").tensor
        except ImageLoadError:
            continue
        h, w = t.shape[1:]
        s = min(h, w)
        t = t[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(torch.nn.functional.interpolate(t[None], size=(side, side), mode="area")[0])
    rng = np.random.default_rng(12345)
    for _ in range(min(4, n)):
        dl = torch.from_numpy(dead_leaves(2 * side, rng, n_shapes=400)).permute(2, 0, 1)
        dl = dl.float()[None] / 127.5 - 1
        out.append(torch.nn.functional.interpolate(dl, size=(side, side), mode="area")[0])
    from diffusion_core.training.data import default_train400, folder_paths

    extra = len(folder_paths(default_train400())) if default_train400().is_dir() else 0
    return torch.stack(out), len(paths) + 200 + extra


def _photo_preview_set(cfg: TrainConfig, data_folder: Path | None, side: int = 64) -> torch.Tensor:
    """A few fixed crops for the 'noisy -> cleaned' preview of a photo model."""
    x = torch.zeros(0, 3, side, side)
    if data_folder is not None:
        from diffusion_core.media.uploads import preview_batch

        x = preview_batch(data_folder, 4, side)
    if len(x) == 0:
        x, _ = dataset_preview("photos", n=8, side=side)
        x = x[[0, 1, 2, len(x) - 1]] if len(x) >= 5 else x[:4]  # 3 photos, 1 synthetic
    return x


@torch.inference_mode()
def draw_preview(ema: torch.nn.Module, cfg: TrainConfig, device: torch.device,
                 photo_set: torch.Tensor | None = None, n_digits: int = 16):
    """A picture of what the EMA weights can do now: digits from pure noise (a 4x4 grid),
    or for photo models one row of noisy crops above the model's clean-up of them."""
    from diffusion_core.maths.precond import EDMDenoiser
    from diffusion_core.media.viz import grid_image
    from diffusion_core.training.train import preview_samples

    den = EDMDenoiser(ema)
    if cfg.kind == "digits":
        x = preview_samples(den, cfg, device, n=n_digits)
        return grid_image(x, nrow=int(math.ceil(math.sqrt(n_digits))))
    clean = photo_set if photo_set is not None and len(photo_set) else torch.zeros(1, 3, 64, 64)
    g = torch.Generator().manual_seed(4321)
    noisy = clean + PREVIEW_SIGMA * torch.randn(clean.shape, generator=g)
    out = den(noisy.to(device), PREVIEW_SIGMA).float().cpu().clamp(-1, 1)
    return grid_image(torch.cat([noisy.clamp(-1, 1), out]), nrow=len(clean))


# --------------------------------------------------------------------------- the job


def friendly_error(e: BaseException) -> str:
    text = str(e)
    if isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return ("The GPU ran out of memory: choose a smaller model or batch. The last "
                "checkpoint is kept; Resume continues from it.")
    if isinstance(e, MemoryError):
        return "The computer ran out of memory: choose a smaller model or batch."
    if "No training images" in text:
        return "There are no usable pictures to train on. Upload some pictures first."
    short = text.splitlines()[0][:200] if text else ""
    return f"Training failed ({type(e).__name__}{': ' + short if short else ''})."


@dataclass
class StartResult:
    ok: bool
    message: str
    job: "TrainingJob | None" = None


class TrainingJob:
    """One training run in a daemon thread. Use :func:`start_training` /
    :func:`resume_training` rather than building one directly."""

    def __init__(self, name: str, cfg: TrainConfig, meta: dict, resume: bool = False,
                 history: list[tuple[int, float]] | None = None, start_step: int = 0):
        self.id = uuid.uuid4().hex
        self.name = name
        self.cfg = cfg
        self.meta = dict(meta)
        self.resume = resume
        self.run_dir = runs_dir() / name
        self.model_dir = user_models_dir() / name
        self.preview_every = int(meta.get("preview_every", 100))
        self.state = "starting"  # starting, running, saving, done, stopped, failed
        self.step = start_step
        self.start_step = start_step
        self.total = cfg.steps
        self.losses: list[tuple[int, float]] = list(history or [])
        self.lr = 0.0
        self.steps_per_s = 0.0
        self.eta_s: float | None = None
        self.elapsed_s = 0.0
        self.device = ""
        self.preview = None  # PIL image
        self.preview_step: int | None = None
        self.error: str | None = None
        self.card: dict | None = None
        self.created = time.time()
        self.finished: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._photo_set: torch.Tensor | None = None
        self._thread = threading.Thread(target=self._run, name=f"train-{name}", daemon=True)

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self.state in ("done", "stopped", "failed")

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def snapshot(self, max_points: int = 400) -> dict[str, Any]:
        """A consistent copy of the progress; the loss curve is averaged into at most
        ``max_points`` points."""
        with self._lock:
            losses = list(self.losses)
            snap = {
                "name": self.name, "state": self.state, "step": self.step,
                "start_step": self.start_step, "total": self.total, "lr": self.lr,
                "steps_per_s": self.steps_per_s, "eta_s": self.eta_s,
                "elapsed_s": self.elapsed_s, "device": self.device, "preview": self.preview,
                "preview_step": self.preview_step, "error": self.error, "card": self.card,
                "stop_requested": self._stop.is_set(), "model_dir": str(self.model_dir),
                "kind": self.cfg.kind, "dataset": self.meta.get("dataset"),
                "preview_every": self.preview_every,
                "last_loss": losses[-1][1] if losses else None,
            }
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

    def _run(self) -> None:
        prev_threads = torch.get_num_threads()
        try:
            if self.cfg.threads:
                torch.set_num_threads(self.cfg.threads)
            device = pick_device(self.cfg.device)
            with self._lock:
                self.device = hardware_string(device)
            if self.cfg.kind != "digits":
                folder = self.run_dir / "data"
                self._photo_set = _photo_preview_set(self.cfg, folder if folder.is_dir() else None)
            summary = train(self.cfg, self.run_dir, resume=self.resume, callback=self._on_step,
                            should_stop=self._stop.is_set, log=lambda *_: None)
            with self._lock:
                self.state = "saving"
                self.step = int(summary["step"])
            card = None
            if summary["step"] > self.start_step:  # nothing new to save otherwise
                card = self._export(summary)
            elif self.model_dir.exists() and (self.model_dir / "card.json").exists():
                card = json.loads((self.model_dir / "card.json").read_text())
            with self._lock:
                self.card = card
                self.state = "stopped" if summary["stopped"] else "done"
                self.finished = time.time()
        except Exception as e:  # noqa: BLE001 - every failure becomes one message
            with self._lock:
                self.error = friendly_error(e)
                self.state, self.finished = "failed", time.time()
        finally:
            torch.set_num_threads(prev_threads)  # (it is also the default of new threads)

    def _export(self, summary: dict) -> dict:
        """The EMA weights of the latest checkpoint + a card -> user_models_dir()/<name>,
        swapped into place so a page never sees half a model."""
        staging = self.run_dir / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        extra = {
            "data": self.meta.get("data_description", ""),
            "trained_with": "the Train page",
            "preset": self.meta.get("preset"),
            "dataset": self.meta.get("dataset"),
            "hardware": self.device,
            "stopped_early": bool(summary["stopped"]),
        }
        export_checkpoint(self.run_dir, staging, extra)
        old = self.run_dir / "previous"
        shutil.rmtree(old, ignore_errors=True)
        if self.model_dir.exists():
            self.model_dir.rename(old)
        staging.rename(self.model_dir)
        shutil.rmtree(old, ignore_errors=True)
        return json.loads((self.model_dir / "card.json").read_text())


def loss_curve(losses: list[tuple[int, float]], max_points: int = 400):
    """(steps, mean loss) averaged into at most max_points consecutive bins."""
    if not losses:
        return [], []
    arr = np.asarray(losses, dtype=np.float64)
    k = max(1, math.ceil(len(arr) / max(1, max_points)))
    n = len(arr) // k * k
    head = arr[:n].reshape(-1, k, 2).mean(1) if n else np.zeros((0, 2))
    if n < len(arr):
        head = np.concatenate([head, arr[n:].mean(0, keepdims=True)])
    return head[:, 0].round().astype(int).tolist(), head[:, 1].tolist()


# --------------------------------------------------------------------------- the registry

_LOCK = threading.Lock()
_JOB: TrainingJob | None = None


def current_job() -> TrainingJob | None:
    """The latest job of this server process (running or finished), if any."""
    return _JOB


def running_job() -> TrainingJob | None:
    job = _JOB
    return job if job is not None and not job.done else None


def _busy_message(job: TrainingJob) -> str:
    return (f"A training job is running (“{job.name}”, step {job.step:,} of {job.total:,}); "
            "wait for it to finish or stop it before starting another.")


def stop_training() -> bool:
    """Ask the running job (if any) to stop; it writes a checkpoint and saves the model."""
    job = running_job()
    if job is None:
        return False
    job.stop()
    return True


def shipped_names() -> set[str]:
    return {m.name for m in list_models(include_user=False)}


def name_problem(name: str) -> str | None:
    """Why a new job cannot use this (sanitised) name, or None."""
    if name in shipped_names():
        return f"“{name}” is the name of a built-in model; choose another name."
    if (runs_dir() / name).exists() or (user_models_dir() / name).exists():
        return (f"A model called “{name}” already exists. Resume it, choose another name, "
                "or start over to replace it.")
    return None


def _inside(path: Path, base: Path) -> bool:
    try:
        path.resolve().relative_to(base.resolve())
        return True
    except ValueError:
        return False


def _read_history(run_dir: Path, upto: int) -> list[tuple[int, float]]:
    hist = []
    log = run_dir / "log.jsonl"
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("step", 0) <= upto and rec.get("loss") is not None:
                hist.append((int(rec["step"]), float(rec["loss"])))
    return hist


def start_training(name: str, preset: str, overrides: dict | None = None,
                   data_folder: str | Path | None = None, replace: bool = False) -> StartResult:
    """Start a new job. ``name`` is sanitised; ``data_folder`` (pictures, for the 'own'
    dataset) is copied into the run folder so the run can always be resumed. ``replace``
    deletes an earlier model and run of the same name first."""
    global _JOB
    if preset not in PRESETS:
        return StartResult(False, f"Unknown preset “{preset}”.")
    p = PRESETS[preset]
    name = sanitize_name(name)
    with _LOCK:
        if _JOB is not None and not _JOB.done:
            return StartResult(False, _busy_message(_JOB), _JOB)
        if name in shipped_names():
            return StartResult(False, name_problem(name) or "")
        run_dir, model_dir = runs_dir() / name, user_models_dir() / name
        if replace:
            for d in (run_dir, model_dir):
                if d.exists() and _inside(d, user_models_dir()):
                    shutil.rmtree(d)
        problem = name_problem(name)
        if problem:
            return StartResult(False, problem)
        data: list[str] = []
        n_images = None
        if p.dataset == "photos":
            data = _photo_sources()
        elif p.dataset == "own":
            from diffusion_core.media.uploads import list_images

            pics = list_images(data_folder) if data_folder is not None else []
            if not pics:
                return StartResult(False, "Upload some pictures first: there is nothing to "
                                          "train on yet.")
            dest = run_dir / "data"
            dest.mkdir(parents=True, exist_ok=True)
            for src in pics:
                shutil.copyfile(src, dest / src.name)
            n_images = len(pics)
            data = [f"folder:{dest}"]
        cfg = build_config(name, preset, overrides, data)
        settings = effective_settings(preset, overrides)
        meta = {"name": name, "preset": preset, "dataset": p.dataset,
                "data_description": describe_dataset(p.dataset, n_images),
                "preview_every": settings["preview_every"], "settings": settings,
                "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "job.json").write_text(json.dumps(meta, indent=2))
        job = TrainingJob(name, cfg, meta)
        _JOB = job
        job._thread.start()
        return StartResult(True, f"Training “{name}” started.", job)


@dataclass
class RunInfo:
    name: str
    step: int
    total: int
    dataset: str | None
    preset: str | None
    meta: dict = field(default_factory=dict)
    mtime: float = 0.0

    @property
    def finished(self) -> bool:
        return self.step >= self.total


def recover_export(run_dir: Path) -> bool:
    """Finish an export that a crash (kill -9, power cut) interrupted between its two
    renames in :meth:`TrainingJob._export`: the model folder is missing but a complete
    staged copy (or the previous version) is still in the run folder. True if recovered."""
    model_dir = user_models_dir() / run_dir.name
    if model_dir.exists() or not _inside(run_dir, runs_dir()):
        return False
    for cand in (run_dir / "staging", run_dir / "previous"):
        if (cand / "model.safetensors").is_file() and (cand / "card.json").is_file():
            try:
                cand.rename(model_dir)
                return True
            except OSError:
                return False
    return False


def list_runs() -> list[RunInfo]:
    """Runs with a checkpoint (so they can be resumed), newest first."""
    out = []
    base = runs_dir()
    if not base.is_dir():
        return out
    for d in base.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            recover_export(d)
        ck, cfgp = d / "checkpoint.pt", d / "config.json"
        if not (d.is_dir() and ck.exists() and cfgp.exists()):
            continue
        try:
            meta = json.loads((d / "job.json").read_text()) if (d / "job.json").exists() else {}
            total = int(json.loads(cfgp.read_text()).get("steps", 0))
            step = _checkpoint_step(d)
        except (OSError, ValueError, RuntimeError, KeyError):
            continue
        out.append(RunInfo(d.name, step, total, meta.get("dataset"), meta.get("preset"), meta,
                           ck.stat().st_mtime))
    out.sort(key=lambda r: -r.mtime)
    return out


_STEP_CACHE: dict[tuple[str, int], int] = {}


def _checkpoint_step(run_dir: Path) -> int:
    """The step a run's checkpoint holds (read once per checkpoint version)."""
    path = run_dir / "checkpoint.pt"
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _STEP_CACHE:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        _STEP_CACHE[key] = int(ck["step"])
    return _STEP_CACHE[key]


def resume_training(name: str, more_steps: int | None = None) -> StartResult:
    """Continue a run from its checkpoint; the step count goes on from there. A finished
    run needs ``more_steps`` (added to where it stopped)."""
    global _JOB
    name = sanitize_name(name)
    with _LOCK:
        if _JOB is not None and not _JOB.done:
            return StartResult(False, _busy_message(_JOB), _JOB)
        run_dir = runs_dir() / name
        if not (run_dir / "checkpoint.pt").exists() or not (run_dir / "config.json").exists():
            return StartResult(False, f"There is no saved run called “{name}” to resume.")
        try:
            cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
            step = _checkpoint_step(run_dir)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            return StartResult(False, f"The saved run “{name}” could not be read "
                                      f"({type(e).__name__}).")
        meta = json.loads((run_dir / "job.json").read_text()) if (run_dir / "job.json").exists() \
            else {"name": name, "dataset": "digits" if cfg.kind == "digits" else "photos"}
        if more_steps:
            extra = _clamp_int(more_steps, 1, LIMITS["steps"][1], 1)
            cfg.steps = min(max(cfg.steps, step + extra), step + LIMITS["steps"][1])
        cfg.threads = auto_threads()
        if step >= cfg.steps:
            return StartResult(False, f"“{name}” has already finished its {cfg.steps:,} steps; "
                                      "ask for more steps to train it further.")
        # uploaded pictures live inside the run folder: point at it wherever that is now
        if (run_dir / "data").is_dir():
            cfg.data = [f"folder:{run_dir / 'data'}" if s.startswith("folder:") else s
                        for s in cfg.data]
        job = TrainingJob(name, cfg, meta, resume=True,
                          history=_read_history(run_dir, step), start_step=step)
        _JOB = job
        job._thread.start()
        return StartResult(True, f"Training “{name}” resumed at step {step:,}.", job)


def config_summary(cfg: TrainConfig) -> dict:
    """The settings worth showing next to a job."""
    d = asdict(cfg)
    return {k: d[k] for k in ("steps", "batch", "lr", "patch", "net")}
