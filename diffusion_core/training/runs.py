"""Training runs on disk: where they live, which can be resumed, and how a model is saved.

A run's folder (checkpoints, log, a copy of uploaded pictures, ``job.json``) is
``user_models_dir()/.runs/<name>``; a finished or stopped run's EMA weights and card are
exported to ``user_models_dir()/<name>/`` so ``registry.list_models()`` (and so every page)
offers the model at once. Nothing is written anywhere else.

:func:`plan_new_run` and :func:`plan_resume` check a request and prepare the folder; they
return a :class:`RunPlan` that :mod:`diffusion_core.jobs.train` starts. No streamlit here.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch

from diffusion_core.media.uploads import LABELS_FILE, UploadSummary, ingest, list_images
from diffusion_core.models.registry import list_models, sanitize_name, user_models_dir
from diffusion_core.training.data import folder_classes
from diffusion_core.training.presets import (
    DIGIT_CLASSES,
    LIMITS,
    PRESETS,
    auto_threads,
    build_config,
    clamp_int,
    describe_dataset,
    effective_settings,
    photo_sources,
)
from diffusion_core.training.train import TrainConfig, export_checkpoint
from diffusion_core.training.worlds import WORLDS, parse_data
from diffusion_core.units import IMAGE_EXTS, ZIP_EXTS

RUNS = ".runs"
UPLOADS = ".uploads"
UPLOAD_TYPES = sorted(e.lstrip(".") for e in IMAGE_EXTS | ZIP_EXTS)  # what the uploader takes


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


def read_history(run_dir: Path, upto: int) -> list[tuple[int, float]]:
    """(step, loss) pairs of a run's log, up to step ``upto``."""
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


def export_model(run_dir: Path, extra: dict) -> dict:
    """The EMA weights of the run's latest checkpoint + a card -> user_models_dir()/<name>,
    swapped into place so a page never sees half a model. Returns the card."""
    model_dir = user_models_dir() / run_dir.name
    staging = run_dir / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    export_checkpoint(run_dir, staging, extra)
    old = run_dir / "previous"
    shutil.rmtree(old, ignore_errors=True)
    if model_dir.exists():
        model_dir.rename(old)
    staging.rename(model_dir)
    shutil.rmtree(old, ignore_errors=True)
    return json.loads((model_dir / "card.json").read_text())


def saved_card(name: str) -> dict | None:
    """The card of the exported model ``name``, if there is one."""
    path = user_models_dir() / name / "card.json"
    return json.loads(path.read_text()) if path.exists() else None


def recover_export(run_dir: Path) -> bool:
    """Finish an export that a crash (kill -9, power cut) interrupted between its two
    renames in :func:`export_model`: the model folder is missing but a complete staged copy
    (or the previous version) is still in the run folder. True if recovered."""
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


_STEP_CACHE: dict[tuple[str, int], int] = {}


def checkpoint_step(run_dir: Path) -> int:
    """The step a run's checkpoint holds (read once per checkpoint version)."""
    path = run_dir / "checkpoint.pt"
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _STEP_CACHE:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        _STEP_CACHE[key] = int(ck["step"])
    return _STEP_CACHE[key]


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
            step = checkpoint_step(d)
        except (OSError, ValueError, RuntimeError, KeyError):
            continue
        out.append(RunInfo(d.name, step, total, meta.get("dataset"), meta.get("preset"), meta,
                           ck.stat().st_mtime))
    out.sort(key=lambda r: -r.mtime)
    return out


def find_run(name: str) -> RunInfo | None:
    return next((r for r in list_runs() if r.name == name), None)


def resume_help(r: RunInfo) -> str:
    """What Resume (or Train longer) does to run ``r``, in one sentence."""
    if not r.finished:
        return f"Continue “{r.name}” from step {r.step:,} of {r.total:,}."
    return (f"“{r.name}” finished its {r.total:,} steps: train it for the number of training "
            "steps set above, on top.")


@dataclass
class RunPlan:
    """A checked request: what a training job needs to start (or ``problem``, why not)."""

    name: str
    cfg: TrainConfig | None = None
    meta: dict = field(default_factory=dict)
    resume: bool = False
    history: list[tuple[int, float]] = field(default_factory=list)
    start_step: int = 0
    problem: str | None = None


def conditional_classes(dataset: str, data_folder: str | Path | None = None) -> list[str]:
    """The classes a conditional model of ``dataset`` would learn: the ten digits, or the
    classes of the uploaded pictures (one per folder of a zip); [] when there are fewer
    than two (a conditional model then has nothing to choose between)."""
    if dataset == "digits":
        return [str(i) for i in range(DIGIT_CLASSES)]
    if dataset in WORLDS:
        return list(WORLDS[dataset].classes)
    if dataset != "own" or data_folder is None:
        return []
    names, _ = folder_classes(Path(data_folder))
    return names if len(names) >= 2 else []


def conditional_note(dataset: str, data_folder: str | Path | None = None) -> str:
    """What "conditional" will do with this data, in one or two sentences."""
    classes = conditional_classes(dataset, data_folder)
    if dataset == "digits":
        return ("It will learn which digit each picture is (0 to 9), so the Create page can "
                "ask it for a 7.")
    if dataset in WORLDS:
        return (f"It will learn what each picture is ({', '.join(classes)}), so the Create "
                f"page can ask it for {WORLDS[dataset].thing}.")
    if classes:
        shown = ", ".join(classes[:12]) + (", …" if len(classes) > 12 else "")
        return (f"It will learn {len(classes)} classes, one per folder of your zip: {shown}. "
                "Pictures outside a folder are learnt without a label.")
    if dataset == "photos":
        return ("The built-in photos have no classes, so this model will be trained without "
                "labels (unconditional).")
    return ("Your pictures are not sorted into folders, so there are no classes to learn: the "
            "model will be trained without labels (unconditional). For a conditional model, "
            "upload one zip with one folder per class (e.g. cats/…, dogs/…), at least two.")


def plan_new_run(name: str, preset: str, overrides: dict | None = None,
                 data_folder: str | Path | None = None, replace: bool = False,
                 conditional: bool = False) -> RunPlan:
    """Check a new run and prepare its folder. ``name`` is sanitised; ``data_folder``
    (pictures, for the 'own' dataset) is copied into the run folder so the run can always
    be resumed. ``replace`` deletes an earlier model and run of the same name first.
    ``conditional`` asks for a class-conditional network when the data has classes (see
    :func:`conditional_classes`); without classes the run is unconditional."""
    name = sanitize_name(name)
    if preset not in PRESETS:
        return RunPlan(name, problem=f"Unknown preset “{preset}”.")
    p = PRESETS[preset]
    if name in shipped_names():
        return RunPlan(name, problem=name_problem(name) or "")
    run_dir, model_dir = runs_dir() / name, user_models_dir() / name
    if replace:
        for d in (run_dir, model_dir):
            if d.exists() and _inside(d, user_models_dir()):
                shutil.rmtree(d)
    problem = name_problem(name)
    if problem:
        return RunPlan(name, problem=problem)
    data: list[str] = []
    n_images = None
    if p.dataset == "photos":
        data = photo_sources()
    elif p.dataset in WORLDS:
        data = [f"{p.dataset}:subset"]
    elif p.dataset == "own":
        pics = list_images(data_folder) if data_folder is not None else []
        if not pics:
            return RunPlan(name, problem="Upload some pictures first: there is nothing to "
                                         "train on yet.")
        dest = run_dir / "data"
        dest.mkdir(parents=True, exist_ok=True)
        for src in pics:
            shutil.copyfile(src, dest / src.name)
        if (Path(data_folder) / LABELS_FILE).is_file():
            shutil.copyfile(Path(data_folder) / LABELS_FILE, dest / LABELS_FILE)
        n_images = len(pics)
        data = [f"folder:{dest}"]
    classes = conditional_classes(p.dataset, run_dir / "data") if conditional else []
    cfg = build_config(name, preset, overrides, data, num_classes=len(classes))
    settings = effective_settings(preset, overrides)
    meta = {"name": name, "preset": preset, "dataset": p.dataset, "classes": classes,
            "data_description": describe_dataset(p.dataset, n_images),
            "preview_every": settings["preview_every"], "settings": settings,
            "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "job.json").write_text(json.dumps(meta, indent=2))
    return RunPlan(name, cfg, meta)


def run_dataset(cfg: TrainConfig) -> str:
    """The Train page's dataset of a config (for a run saved without its job.json)."""
    if cfg.kind == "world":
        return parse_data(cfg.data)[0]
    return "digits" if cfg.kind == "digits" else "photos"


def plan_resume(name: str, more_steps: int | None = None) -> RunPlan:
    """Check that run ``name`` can continue from its checkpoint; the step count goes on from
    there. A finished run needs ``more_steps`` (added to where it stopped)."""
    name = sanitize_name(name)
    run_dir = runs_dir() / name
    if not (run_dir / "checkpoint.pt").exists() or not (run_dir / "config.json").exists():
        return RunPlan(name, problem=f"There is no saved run called “{name}” to resume.")
    try:
        cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        step = checkpoint_step(run_dir)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        return RunPlan(name, problem=f"The saved run “{name}” could not be read "
                                     f"({type(e).__name__}).")
    meta = json.loads((run_dir / "job.json").read_text()) if (run_dir / "job.json").exists() \
        else {"name": name, "dataset": run_dataset(cfg)}
    if more_steps:
        extra = clamp_int(more_steps, 1, LIMITS["steps"][1], 1)
        cfg.steps = min(max(cfg.steps, step + extra), step + LIMITS["steps"][1])
    cfg.threads = auto_threads()
    if step >= cfg.steps:
        return RunPlan(name, problem=f"“{name}” has already finished its {cfg.steps:,} steps; "
                                     "ask for more steps to train it further.")
    # uploaded pictures live inside the run folder: point at it wherever that is now
    if (run_dir / "data").is_dir():
        cfg.data = [f"folder:{run_dir / 'data'}" if s.startswith("folder:") else s
                    for s in cfg.data]
    return RunPlan(name, cfg, meta, resume=True, history=read_history(run_dir, step),
                   start_step=step)


def more_steps_for(name: str, steps_setting) -> int | None:
    """Extra steps for Resume: None for an unfinished run (it continues to its end), else
    the steps setting of the form (default 1,000), so "Train longer" trains that much more."""
    run = find_run(sanitize_name(name))
    if run is None or not run.finished:
        return None
    return clamp_int(steps_setting, *LIMITS["steps"], 1000)


@dataclass
class UploadBox:
    """One visitor's pictures for a training that has not started yet: a private folder
    under :func:`uploads_dir`, which uploads were added already, and what the last ones gave.
    """

    token: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    seen: set[str] = field(default_factory=set)
    report: UploadSummary | None = None
    round: int = 0  # bumped by clear(), so that a page can offer a fresh uploader

    @property
    def folder(self) -> Path:
        return uploads_dir() / self.token

    @property
    def count(self) -> int:
        return len(list_images(self.folder))

    def add(self, files) -> bool:
        """Check and keep the uploads not seen before (Streamlit ``UploadedFile`` s or
        anything with a ``file_id``); True if there were any."""
        new = [f for f in files or [] if f.file_id not in self.seen]
        if not new:
            return False
        prune_uploads(keep=self.folder)
        self.report = ingest(new, self.folder)
        self.seen |= {f.file_id for f in new}
        return True

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.seen, self.report, self.round = set(), None, self.round + 1
