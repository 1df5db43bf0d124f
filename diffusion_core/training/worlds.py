"""The three 28x28 "worlds" the Create page draws from: handwritten digits (MNIST), clothes
(Fashion-MNIST) and doodles (Quick, Draw!).

Each world is a labelled set of gray 28x28 pictures, white on black. Two copies exist:

* the full sets in ``../shared/data/gen/<file>.npz`` (``images``, ``labels``,
  ``class_names``, ``split``: 0 = train, 1 = test), used to train the shipped models and to
  benchmark them; never needed at run time;
* a compact subset of the train split shipped in the repository
  (``data/worlds/<world>.npz``, written by :func:`write_subset`), which the Train page's
  presets learn from, so the app trains without ``../shared``.

A training config names its data as ``<world>`` (the full train split) or
``<world>:subset`` (the shipped subset); see :func:`world_batches`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffusion_core.system.paths import REPO_ROOT, SHARED_DATA_DIR

WORLD_SIZE = 28
SUBSET_DIR = REPO_ROOT / "data" / "worlds"


@dataclass(frozen=True)
class World:
    key: str  # model name and data name: mnist, fashion, doodles
    title: str  # what the Create page calls it
    file: str  # the .npz under ../shared/data/gen
    classes: tuple[str, ...]  # class names by label, as the card lists them
    aliases: dict  # other accepted names (lower case) -> class name
    credit: str  # data source and licence, for cards
    thing: str  # "a digit", "a piece of clothing", "a doodle": for words on screen


WORLDS: dict[str, World] = {
    "mnist": World(
        "mnist", "Digits", "mnist.npz", tuple(str(i) for i in range(10)),
        {w: str(i) for i, w in enumerate(("zero", "one", "two", "three", "four", "five",
                                           "six", "seven", "eight", "nine"))},
        "MNIST handwritten digits (Y. LeCun, C. Cortes, C. J. C. Burges), commonly used "
        "under CC BY-SA 3.0", "a digit"),
    "fashion": World(
        "fashion", "Clothes", "fashion_mnist.npz",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"),
        {"t-shirt": "T-shirt/top", "tshirt": "T-shirt/top", "t shirt": "T-shirt/top",
         "top": "T-shirt/top", "tee": "T-shirt/top", "trousers": "Trouser",
         "pants": "Trouser", "jeans": "Trouser", "sweater": "Pullover", "jumper": "Pullover",
         "dresses": "Dress", "jacket": "Coat", "coats": "Coat", "sandals": "Sandal",
         "shirts": "Shirt", "sneakers": "Sneaker", "trainer": "Sneaker",
         "trainers": "Sneaker", "shoe": "Sneaker", "bags": "Bag", "handbag": "Bag",
         "ankle boots": "Ankle boot", "boot": "Ankle boot", "boots": "Ankle boot",
         "ankle-boot": "Ankle boot"},
        "Fashion-MNIST (Zalando SE, Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747), MIT "
        "licence", "a piece of clothing"),
    "doodles": World(
        "doodles", "Doodles", "quickdraw6.npz",
        ("apple", "bicycle", "cat", "diamond", "eye", "fish"),
        {"apples": "apple", "bike": "bicycle", "bicycles": "bicycle", "bikes": "bicycle",
         "cats": "cat", "kitten": "cat", "diamonds": "diamond", "gem": "diamond",
         "eyes": "eye", "fishes": "fish"},
        "Quick, Draw! by Google (CC BY 4.0)", "a doodle"),
}


def world_card(key: str) -> dict:
    """The card entries that name a world's classes: what ``--label`` and the Create page
    accept (``classes``, ``aliases``), the world's title and the data credit."""
    w = WORLDS[key]
    return {"world": w.key, "world_title": w.title, "classes": list(w.classes),
            "aliases": dict(w.aliases), "data_credit": w.credit, "size": WORLD_SIZE}


def shared_path(key: str) -> Path:
    return SHARED_DATA_DIR / "gen" / WORLDS[key].file


def subset_path(key: str) -> Path:
    return SUBSET_DIR / f"{key}.npz"


def load_split(key: str, split: str = "train", source: str = "full"
               ) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of one world. ``source="full"`` reads
    ``../shared`` (``split`` "train" or "test"); ``"subset"`` reads the shipped subset
    (train pictures only). FileNotFoundError with a clear message when missing."""
    if key not in WORLDS:
        raise ValueError(f"unknown world {key!r}: one of {', '.join(WORLDS)}")
    path = subset_path(key) if source == "subset" else shared_path(key)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the {WORLDS[key].title.lower()} "
            + ("subset ships in the repository (data/worlds/)" if source == "subset"
               else "data set is in ../shared/data/gen (needed for training and benchmarks)"))
    with np.load(path, allow_pickle=False) as d:
        images, labels = d["images"], d["labels"].astype(np.int64)
        if source != "subset":
            keep = d["split"] == (0 if split == "train" else 1)
            images, labels = images[keep], labels[keep]
    return np.ascontiguousarray(images), labels


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [-1, 1]."""
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)[:, None]


def write_subset(key: str, per_class: int, seed: int = 0) -> Path:
    """Write the shipped subset of a world: ``per_class`` train pictures of each class,
    drawn at random (seeded) from the full train split."""
    images, labels = load_split(key, "train")
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                          for c in range(len(WORLDS[key].classes))])
    idx.sort()
    SUBSET_DIR.mkdir(parents=True, exist_ok=True)
    path = subset_path(key)
    np.savez_compressed(path, images=images[idx], labels=labels[idx])
    return path


def parse_data(data: list) -> tuple[str, str]:
    """A config's ``data`` for a world: ["mnist"] (full) or ["mnist:subset"] ->
    (world, source)."""
    if len(data) != 1:
        raise ValueError(f"a world config names one data set, e.g. ['mnist'], not {data}")
    key, _, source = str(data[0]).partition(":")
    if source not in ("", "subset"):
        raise ValueError(f"unknown source {source!r} in {data[0]!r}: '<world>' or "
                         "'<world>:subset'")
    return key, source or "full"


#: worlds whose training pictures are mirrored left-right at random (see world_batches)
FLIPPED_WORLDS = ("doodles",)


def world_batches(data: list, flips: bool | None = None):
    """(fn(n, generator) -> (x0, gray, labels), description) for a world config. Doodles
    are flipped left-right at random (people draw a fish or a bicycle facing either way);
    digits and clothes are not: every Fashion-MNIST shoe points left, so a model trained on
    mirrored shoes draws half of them pointing right, which no real picture does (the judge
    read many of those as bags)."""
    key, source = parse_data(data)
    images, labels = load_split(key, "train", source)
    x = to_tensor(images)
    y = torch.as_tensor(labels, dtype=torch.long)
    flip = key in FLIPPED_WORLDS if flips is None else flips

    def fn(n, g):
        idx = torch.randint(len(x), (n,), generator=g)
        xb = x[idx]
        if flip:
            f = torch.rand(n, generator=g) < 0.5
            xb = torch.where(f[:, None, None, None], xb.flip(-1), xb)
        return xb, torch.ones(n, dtype=torch.bool), y[idx]

    name = f"{WORLDS[key].title} ({'shipped subset' if source == 'subset' else 'train split'})"
    return fn, {name: int(len(x)), "source": WORLDS[key].credit}


EXAMPLES_FILE = "examples.png"


def examples_strip(key: str) -> np.ndarray:
    """uint8 (28, 28 * k): the first picture of each class in the shipped subset, in label
    order: the pictures the Create page shows beside "what to draw"."""
    images, labels = load_split(key, "train", "subset")
    return np.concatenate([images[int(np.flatnonzero(labels == c)[0])]
                           for c in range(len(WORLDS[key].classes))], axis=1)


def write_examples(key: str, model_dir: Path) -> Path:
    """Write a world's example strip into a model folder (``examples.png``)."""
    from PIL import Image

    path = Path(model_dir) / EXAMPLES_FILE
    Image.fromarray(examples_strip(key)).save(path)
    return path
