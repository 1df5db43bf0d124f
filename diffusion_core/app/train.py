"""The Train page: its form as a :class:`TrainRequest`, and the words it shows about a job.

The form's values live under ``train_<field>`` keys (``train_dataset``, ``train_preset``,
``train_name``, ``train_replace``, ``train_conditional`` and one per advanced setting,
``train_steps`` ...); this
module reads and fixes them, never trusting a widget's bounds. No streamlit here.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffusion_core.jobs.train import StartResult, start_training
from diffusion_core.media.uploads import list_images
from diffusion_core.models.registry import sanitize_name
from diffusion_core.training.presets import (
    DATASETS,
    MODEL_SIZE_LABELS,
    SETTINGS,
    default_preset,
    draws_pictures,
    effective_settings,
    fill_form,
    presets_for,
    resolve_preset,
)
from diffusion_core.training.runs import (
    RunInfo,
    conditional_classes,
    conditional_note,
    list_runs,
    name_problem,
    shipped_names,
)
from diffusion_core.training.worlds import WORLDS

PREFIX = "train_"


@dataclass
class TrainRequest:
    """What the form asks for, checked: the dataset, a preset that belongs to it, the
    (sanitised) name and the advanced settings (clamped when the job is built)."""

    dataset: str = "digits"
    preset: str | None = None
    name: str = ""
    overrides: dict = field(default_factory=dict)
    replace: bool = False
    data_folder: Path | None = None
    conditional: bool = False  # learn the classes too (digits, or a zip's folders)

    def __post_init__(self):
        self.dataset = self.dataset if self.dataset in DATASETS else "digits"
        self.preset = resolve_preset(self.dataset, self.preset)
        self.name = sanitize_name(self.name or "")
        self.data_folder = self.data_folder if self.dataset == "own" else None
        self.conditional = bool(self.conditional)

    @classmethod
    def from_form(cls, form: Mapping[str, Any], data_folder: Path | None = None,
                  prefix: str = PREFIX) -> TrainRequest:
        """Read the request from a form's values (missing keys: the defaults)."""
        return cls(form.get(f"{prefix}dataset", "digits"), form.get(f"{prefix}preset"),
                   form.get(f"{prefix}name", ""),
                   {k: form.get(f"{prefix}{k}") for k in SETTINGS},
                   bool(form.get(f"{prefix}replace")), data_folder,
                   bool(form.get(f"{prefix}conditional")))

    @property
    def settings(self) -> dict:
        return effective_settings(self.preset, self.overrides)

    @property
    def classes(self) -> list[str]:
        """The classes the model will learn ([] for an unconditional one)."""
        return conditional_classes(self.dataset, self.data_folder) if self.conditional else []

    @property
    def conditional_note(self) -> str:
        """What "conditional" does with this data ("" when it is off)."""
        return conditional_note(self.dataset, self.data_folder) if self.conditional else ""

    @property
    def problem(self) -> str | None:
        """Why the name cannot be used for a new run (None: it can)."""
        return name_problem(self.name)

    @property
    def builtin_name(self) -> bool:
        return self.name in shipped_names()

    @property
    def can_start(self) -> bool:
        """A free name (or one to replace that is not a built-in model's), and something to
        train on."""
        name_ok = not self.problem or (self.replace and not self.builtin_name)
        has_data = self.dataset != "own" or bool(self.data_folder and list_images(self.data_folder))
        return bool(name_ok and has_data)

    def start(self) -> StartResult:
        return start_training(self.name, self.preset, self.overrides, self.data_folder,
                              self.replace, self.conditional)


def prepare_form(form: MutableMapping, has_gpu: bool, prefix: str = PREFIX) -> None:
    """Before the widgets are drawn: a known dataset, a preset of that dataset (the one for
    this hardware by default), the advanced settings at the preset's values (see
    :func:`~diffusion_core.training.presets.fill_form`) and a name to start from."""
    if form.get(f"{prefix}dataset") not in DATASETS:
        form[f"{prefix}dataset"] = "digits"
    dataset = form[f"{prefix}dataset"]
    if form.get(f"{prefix}preset") not in {p.key for p in presets_for(dataset)}:
        form[f"{prefix}preset"] = default_preset(dataset, has_gpu)
    fill_form(form, form[f"{prefix}preset"], prefix)
    if form.get(f"{prefix}conditional_for") != dataset:  # a world is learnt with its classes
        if dataset in WORLDS:
            form[f"{prefix}conditional"] = True
        form[f"{prefix}conditional_for"] = dataset
    form.setdefault(f"{prefix}name", f"my-{dataset}")


def remember(form: MutableMapping, res: StartResult, prefix: str = PREFIX) -> None:
    """After Start or Resume: the refusal to show (or none), and which job is this visitor's."""
    form[f"{prefix}message"] = None if res.ok else res.message
    if res.ok:
        form[f"{prefix}my_job"] = res.job.id
        form[f"{prefix}replace"] = False


def runs_by_name() -> dict[str, RunInfo]:
    """Every run that can be resumed, newest first."""
    return {r.name: r for r in list_runs()}


# --------------------------------------------------------------------------- words


def settings_line(settings: dict) -> str:
    """One line that sums the settings up, for a caption under the form."""
    size = MODEL_SIZE_LABELS[settings["size"]].split(" (")[0].lower()
    return (f"{settings['steps']:,} steps of {settings['batch']} pictures · learning rate "
            f"{settings['lr']:g} · {size} network · new samples every "
            f"{settings['preview_every']} steps")


def fmt_duration(s) -> str:
    if s is None or s != s or s == float("inf"):
        return "…"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def hardware_text(s) -> str:
    return str(s).replace(", 1 threads", ", 1 thread") if s else "…"


def progress_text(snap: dict) -> str:
    """The words on the progress bar of a training job."""
    state, step, total = snap["state"], snap["step"], max(snap["total"], 1)
    if state == "starting":
        return ("Preparing the pictures…" if draws_pictures(snap["kind"]) else
                "Preparing the pictures (the synthetic ones take a little while)…")
    if state == "saving":
        return "Saving the model…"
    text = (f"Step {step:,} of {total:,} · {snap['steps_per_s']:.1f} steps/s · "
            f"elapsed {fmt_duration(snap['elapsed_s'])}")
    if state == "running":
        text += f" · about {fmt_duration(snap['eta_s'])} left"
    return text


def preview_caption(snap: dict) -> str:
    """What the latest preview picture shows."""
    if draws_pictures(snap["kind"]):
        cap = (f"At step {snap['preview_step']:,}: 16 pictures the model draws from pure noise "
               "(12 denoising steps, the same noise every time)")
    else:
        cap = (f"At step {snap['preview_step']:,}: noisy crops (top) and the model's clean-up "
               "of them (bottom)")
    if snap["preview_step"] <= snap["start_step"] + 1:
        return cap + ". It has not learnt anything yet: this is what it makes untrained."
    return cap + f". New ones every {snap['preview_every']:,} steps."


def card_lines(card: dict) -> str:
    """The facts of a saved model's card, as a short markdown list."""
    loss = card.get("final_loss")
    return (f"- **Trained on:** {card.get('data') or '–'}\n"
            f"- **Steps:** {card.get('steps', 0):,} of {card.get('batch', 0)} pictures each\n"
            f"- **Training time:** {fmt_duration(card.get('wall_time_s'))} on "
            f"{hardware_text(card.get('hardware'))}\n"
            f"- **Final loss:** {f'{loss:.4f}' if loss is not None else '–'}"
            + (f"\n- **Classes:** {', '.join(map(str, card['classes']))} (ask for one on the "
               "Create page)" if card.get("classes") else ""))
