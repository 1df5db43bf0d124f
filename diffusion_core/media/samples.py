"""The built-in sample pictures: files shipped inside the scikit-image wheel, never downloaded.

:data:`SAMPLES` is the catalogue (name, file, title, one sentence, kind); :func:`list_samples`
names the ones installed here, and :func:`load_sample` decodes one through
:func:`diffusion_core.media.decode.load_image` like any upload.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from diffusion_core.media.decode import ImageLoadError, LoadedImage, Mode, load_image

__all__ = ["SAMPLES", "Sample", "list_samples", "load_sample", "sample_images", "sample_path"]


@dataclass(frozen=True)
class Sample:
    """A built-in sample picture.

    Attributes:
        name: identifier used by :func:`load_sample`.
        filename: file inside ``skimage/data`` (bundled with the wheel).
        title: short display name.
        description: one sentence for the UI.
        kind: ``"photo"``, ``"medical"``, ``"science"`` or ``"texture"``.
        gray: the picture is gray in content; ``mode="auto"`` then loads 1 channel even
            when the file itself stores RGB.
    """

    name: str
    filename: str
    title: str
    description: str
    kind: str
    gray: bool = False


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample(
            "astronaut",
            "astronaut.png",
            "Astronaut",
            "Portrait of astronaut Eileen Collins (NASA), colour.",
            "photo",
        ),
        Sample("cat", "chelsea.png", "Cat", "Chelsea the cat, colour.", "photo"),
        Sample(
            "coffee",
            "coffee.png",
            "Coffee",
            "A cup of coffee on a saucer, colour.",
            "photo",
        ),
        Sample(
            "rocket",
            "rocket.jpg",
            "Rocket",
            "A rocket launch, colour photograph (JPEG).",
            "photo",
        ),
        Sample(
            "camera",
            "camera.png",
            "Cameraman",
            "The classic 'cameraman' test picture, grayscale.",
            "photo",
            gray=True,
        ),
        Sample(
            "coins",
            "coins.png",
            "Coins",
            "Greek coins on a dark background, grayscale.",
            "photo",
            gray=True,
        ),
        Sample(
            "moon",
            "moon.png",
            "Moon",
            "Surface of the moon, grayscale.",
            "science",
            gray=True,
        ),
        Sample(
            "hubble",
            "hubble_deep_field.jpg",
            "Hubble deep field",
            "Distant galaxies seen by the Hubble telescope, colour.",
            "science",
        ),
        Sample(
            "retina",
            "retina.jpg",
            "Retina",
            "Fundus photograph of a human retina (medical), colour.",
            "medical",
        ),
        Sample(
            "tissue",
            "ihc.png",
            "Stained tissue",
            "Immunohistochemistry microscopy of tissue (medical), colour.",
            "medical",
        ),
        Sample(
            "cells",
            "cell.png",
            "Cells",
            "Microscopy of a cell, grayscale.",
            "medical",
            gray=True,
        ),
        Sample(
            "phantom",
            "phantom.png",
            "CT phantom",
            "Shepp-Logan phantom, the standard test image for CT reconstruction.",
            "medical",
            gray=True,
        ),
        Sample(
            "brick",
            "brick.png",
            "Brick wall",
            "Brick wall texture, grayscale.",
            "texture",
            gray=True,
        ),
        Sample(
            "grass",
            "grass.png",
            "Grass",
            "Grass texture, grayscale.",
            "texture",
            gray=True,
        ),
    )
}


@functools.lru_cache(maxsize=1)
def _skimage_data_dir() -> Path | None:
    """``skimage/data`` inside the installed package, located without importing skimage."""
    try:
        spec = importlib.util.find_spec("skimage")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data"
        if candidate.is_dir():
            return candidate
    return None


def sample_path(name: str) -> Path | None:
    """Local path of sample ``name`` if its file ships with scikit-image, else ``None``."""
    sample = SAMPLES[name]
    data_dir = _skimage_data_dir()
    if data_dir is None:
        return None
    path = data_dir / sample.filename
    return path if path.is_file() else None


def list_samples() -> list[str]:
    """Names of the samples available offline, in display order."""
    return [name for name in SAMPLES if sample_path(name) is not None]


def load_sample(name: str, max_side: int | None = 512, mode: Mode = "auto") -> LoadedImage:
    """Load a built-in sample by name (see :func:`list_samples`); never uses the network.

    With ``mode="auto"``, samples whose content is gray load as 1 channel.

    Raises:
        KeyError: unknown sample name.
        ImageLoadError: the sample's file is not installed.
    """
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; choose one of {sorted(SAMPLES)}")
    path = sample_path(name)
    if path is None:
        raise ImageLoadError(f"The sample image “{SAMPLES[name].title}” is not installed.")
    if mode == "auto" and SAMPLES[name].gray:
        mode = "gray"
    return load_image(path, max_side=max_side, mode=mode)


def sample_images() -> dict[str, Callable[..., LoadedImage]]:
    """Offline samples as ``{name: loader}``; each loader accepts ``max_side`` and ``mode``."""
    return {name: functools.partial(load_sample, name) for name in list_samples()}
