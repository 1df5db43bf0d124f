"""Which models and devices a page offers, and opening a model for a run.

Models come from the one process-wide cache, :func:`diffusion_core.models.registry.get_denoiser`.
"""

from __future__ import annotations

import torch

from diffusion_core.app.settings import choose
from diffusion_core.models.registry import ModelInfo, ModelLoadError, get_denoiser, list_models
from diffusion_core.system.device import device_label, pick_device

DEVICE_NAMES = {"cpu": "CPU", "cuda": "GPU (CUDA)"}


def photo_models(models: list[ModelInfo] | None = None) -> list[ModelInfo]:
    """The models that clean photos (what restoring and measuring need)."""
    return [m for m in (list_models() if models is None else models) if m.kind == "photo"]


def digit_models(models: list[ModelInfo] | None = None) -> list[ModelInfo]:
    """The handwritten-digit models (what generating from pure noise is best shown with)."""
    return [m for m in (list_models() if models is None else models)
            if m.kind == "digits" or m.name == "digits"]


def model_named(models: list[ModelInfo], name: str | None) -> ModelInfo | None:
    """The model called ``name`` among ``models``; None if there is none."""
    return next((m for m in models if m.name == name), None)


def device_options() -> list[str]:
    """What a page's device menu offers: "auto", "cpu" and, where torch sees one, "cuda"."""
    return ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def device_text(option: str) -> str:
    """A device option for people: "auto: <what auto picks here>", "CPU", "GPU (CUDA)"."""
    if option == "auto":
        return f"auto: {device_label(pick_device('auto'))}"
    return DEVICE_NAMES.get(option, option)


def run_device(option) -> torch.device:
    """The device a run uses for a menu ``option`` (anything unknown counts as "auto")."""
    return pick_device(choose(option, device_options(), "auto"))


def open_model(name: str, device: str | torch.device):
    """The model ``name`` on ``device`` from the shared cache. Any failure (damaged weights, an
    unusable device) raises :class:`ModelLoadError` with one sentence for the screen."""
    try:
        return get_denoiser(name, str(device))
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - e.g. an unusable device
        raise ModelLoadError(f"The model “{name}” could not be loaded on {device} "
                             f"({type(e).__name__}).") from e
