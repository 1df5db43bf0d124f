"""The 28x28 worlds (digits, clothes, doodles): the shipped subsets, class names and aliases,
the CLI's names/aliases/unknown labels, a tiny training smoke run, and the benchmark's
statistics (two-sample test, blur, nearest neighbours) on known inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.cli import main as cli_main
from diffusion_core.models.labels import resolve_label, valid_labels
from diffusion_core.models.registry import find_model
from diffusion_core.training.train import TrainConfig, train
from diffusion_core.training.worlds import (
    WORLDS,
    examples_strip,
    load_split,
    parse_data,
    world_batches,
    world_card,
)
from diffusion_core.training.worlds_check import (
    _nearest,
    c2st,
    gaussian_blur,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("key", list(WORLDS))
def test_shipped_subset_is_balanced_and_small(key):
    images, labels = load_split(key, "train", "subset")
    k = len(WORLDS[key].classes)
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    counts = np.bincount(labels, minlength=k)
    assert len(counts) == k and counts.min() == counts.max() >= 500
    assert images.max() == 255 and images.mean() < 128  # white on black
    total = sum((ROOT / "data" / "worlds" / f"{w}.npz").stat().st_size for w in WORLDS)
    assert total <= 15 * 2**20


@pytest.mark.parametrize("key", list(WORLDS))
def test_shipped_model_card_names_classes_and_examples(key):
    info = find_model(key)
    card = info.card
    assert card["classes"] == list(WORLDS[key].classes) and card["size"] == 28
    assert card["world"] == key and card["net"]["num_classes"] == len(card["classes"])
    strip = np.asarray(Image.open(info.path / "examples.png"))
    assert strip.shape == (28, 28 * len(card["classes"]))
    np.testing.assert_array_equal(strip, examples_strip(key))
    assert (info.path / "model.safetensors").stat().st_size <= 10 * 2**20


def test_class_names_and_aliases_any_case():
    card = {"name": "fashion", **world_card("fashion")}
    assert resolve_label(card, "sneaker") == 7
    assert resolve_label(card, "SNEAKERS") == 7
    assert resolve_label(card, "Ankle  boot") == 9
    assert resolve_label(card, "ankle boot") == 9
    assert resolve_label(card, "t-shirt") == 0
    assert resolve_label(card, "T-shirt/top") == 0
    assert resolve_label(card, "Shirt") == 6  # its own class, not the T-shirt's alias
    assert resolve_label(card, "anything") == -1
    with pytest.raises(ValueError, match="valid labels: T-shirt/top .*Sneaker .*anything"):
        resolve_label(card, "hat")
    doodles = {"name": "doodles", **world_card("doodles")}
    assert resolve_label(doodles, "Cat") == 2 and resolve_label(doodles, "bike") == 1
    mnist = {"name": "mnist", **world_card("mnist")}
    assert resolve_label(mnist, "seven") == 7 and resolve_label(mnist, "7") == 7
    assert "Sneaker (sneakers, trainer, trainers, shoe)" in valid_labels(card)


def test_cli_lists_labels(capsys):
    assert cli_main(["generate", "--model", "doodles", "--list-labels"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("apple") and out[2].startswith("cat") and out[-1] == "anything"


def test_cli_generates_a_sneaker_per_file_at_the_models_size(tmp_path, capsys):
    out = tmp_path / "shoes"
    rc = cli_main(["generate", "--model", "fashion", "--label", "Sneakers", "--guidance", "3",
                   "--n", "3", "--steps", "2", "--seed", "0", "--out", f"{out}/"])
    assert rc == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == ["000.png", "001.png", "002.png"]
    assert Image.open(files[0]).size == (28, 28)
    assert "label Sneaker, guidance 3" in capsys.readouterr().out


def test_cli_unknown_label_lists_the_valid_ones(tmp_path, capsys):
    rc = cli_main(["generate", "--model", "fashion", "--label", "hat", "--n", "1", "--steps",
                   "1", "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert rc != 0 and not (tmp_path / "x.png").exists()
    assert "no class “hat”" in err and "Ankle boot" in err and "Sneaker" in err


def _drawn_indices(n_data: int, n: int, seed: int) -> torch.Tensor:
    """The pictures a batch of ``n`` drawn with ``seed`` takes (world_batches' first draw)."""
    return torch.randint(n_data, (n,), generator=torch.Generator().manual_seed(seed))


def _as_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1)[:, None]


def test_world_batches_are_reproducible_and_flip_doodles_only():
    fn, desc = world_batches(["fashion:subset"])
    a = fn(8, torch.Generator().manual_seed(3))
    b = fn(8, torch.Generator().manual_seed(3))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    x, gray, labels = a
    assert x.shape == (8, 1, 28, 28) and x.min() >= -1 and x.max() <= 1 and gray.all()
    assert labels.dtype == torch.long and 0 <= int(labels.min()) and int(labels.max()) < 10
    assert desc["Clothes (shipped subset)"] == 6000
    # doodles: with a fixed draw some pictures of the batch are mirror images of the data
    doodles_fn, _ = world_batches(["doodles:subset"])
    images, _ = load_split("doodles", "train", "subset")
    orig = _as_tensor(images[_drawn_indices(len(images), 64, 0).numpy()])
    x, _, _ = doodles_fn(64, torch.Generator().manual_seed(0))
    same = (x - orig).abs().flatten(1).amax(1) < 1e-6
    assert 10 < int(same.sum()) < 54  # about half kept, half mirrored
    torch.testing.assert_close(x[~same], orig[~same].flip(-1))
    # clothes (every shoe points left) and digits are drawn as they are
    for world in ("fashion", "mnist"):
        world_fn, _ = world_batches([f"{world}:subset"])
        images, _ = load_split(world, "train", "subset")
        x, _, _ = world_fn(64, torch.Generator().manual_seed(0))
        torch.testing.assert_close(x, _as_tensor(images[_drawn_indices(len(images), 64, 0).numpy()]))


def test_parse_data_refuses_bad_names():
    assert parse_data(["doodles"]) == ("doodles", "full")
    assert parse_data(["doodles:subset"]) == ("doodles", "subset")
    with pytest.raises(ValueError, match="one data set"):
        parse_data(["mnist", "fashion"])
    with pytest.raises(ValueError, match="unknown source"):
        parse_data(["mnist:all"])
    with pytest.raises(ValueError, match="unknown world"):
        load_split("cifar", "train", "subset")


def test_tiny_world_training_exports_a_drawable_card(tmp_path):
    cfg = TrainConfig.from_dict(dict(
        name="tiny-doodles", kind="world", data=["doodles:subset"], patch=28, steps=3, batch=4,
        net=dict(in_channels=1, base=8, mults=[1, 2], blocks=[1, 1], emb_dim=16, num_classes=6),
        p_focus=0.0, p_gray=0.0, ckpt_every=10, log_every=1, eval_every=0, sample_every=0))
    summary = train(cfg, tmp_path / "run", log=lambda *_: None)
    assert summary["step"] == 3
    exp = tmp_path / "run" / "export"
    card = json.loads((exp / "card.json").read_text())
    assert card["classes"] == list(WORLDS["doodles"].classes) and card["world"] == "doodles"
    assert card["aliases"]["bike"] == "bicycle" and card["size"] == 28
    assert Image.open(exp / "examples.png").size == (28 * 6, 28)


def test_gaussian_blur_keeps_the_mean_and_spreads_a_dot():
    x = torch.zeros(1, 1, 15, 15)
    x[0, 0, 7, 7] = 1.0
    y = gaussian_blur(x, 0.7)
    assert abs(float(y.sum()) - 1.0) < 1e-5
    # the centre keeps (1D weight at 0)^2 of a Gaussian with sigma 0.7 sampled at integers
    t = np.arange(-3, 4)
    w = np.exp(-t**2 / (2 * 0.7**2))
    assert abs(float(y[0, 0, 7, 7]) - (1 / w.sum()) ** 2) < 1e-6


def test_nearest_distances():
    a = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    b = torch.tensor([[0.0, 1.0], [3.0, 3.0], [10.0, 10.0]])
    torch.testing.assert_close(_nearest(a, b, chunk=1), torch.tensor([1.0, 1.0]))


def test_two_sample_test_tells_different_sets_apart_and_not_same_ones():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(200, 1, 28, 28, generator=g) * 2 - 1
    b = torch.rand(200, 1, 28, 28, generator=g) * 2 - 1
    same = c2st(a, b, folds=4, epochs=4)
    assert 0.35 <= same <= 0.65, same
    bright = (b + 0.5).clamp(-1, 1)  # shifted brightness: easy to tell
    assert c2st(a, bright, folds=4, epochs=4) >= 0.9
