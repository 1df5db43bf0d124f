"""Shipped models: safetensors only, checksums, and card figures that come from evaluator files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from diffusion_core.models.registry import (
    ModelInfo,
    ModelLoadError,
    card_identity,
    list_models,
    load_denoiser,
    sha256_file,
)
from diffusion_core.units import sigma_from_255
from tests.doubles import photo_crop

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIRS = sorted(p for p in (ROOT / "models").iterdir() if (p / "card.json").exists())


def test_shipped_models_listed():
    names = {m.name for m in list_models(include_user=False)}
    assert "natural" in names


@pytest.mark.parametrize("d", MODEL_DIRS, ids=lambda p: p.name)
def test_card_is_complete_and_checksum_matches(d):
    card = json.loads((d / "card.json").read_text())
    for key in ("architecture", "net", "parameters", "data", "steps", "wall_time_s", "config",
                "sha256"):
        assert key in card, key
    assert sha256_file(d / "model.safetensors") == card["sha256"]
    if card.get("overview"):  # a photo cascade: its second network is checked the same way
        assert sha256_file(d / card["overview"]["file"]) == card["overview"]["sha256"]
    assert not list(d.glob("*.pt")) and not list(d.glob("*.pth")) and not list(d.glob("*.bin"))
    assert (d / "model.safetensors").stat().st_size <= 25 * 2**20


@pytest.mark.parametrize("d", MODEL_DIRS, ids=lambda p: p.name)
def test_card_figures_come_from_evaluator_files(d):
    card = json.loads((d / "card.json").read_text())
    for rel, entry in card.get("benchmarks", {}).items():
        res = json.loads((ROOT / rel).read_text())
        # the file measured exactly the weights that ship (not an earlier checkpoint; for a
        # photo cascade: both networks and the mix table)
        assert res.get("model_sha256") == entry.get("model_sha256") == card_identity(card), rel
        if "summary" in entry:
            assert entry["summary"] == res["summary"], rel
        else:
            for k, v in entry["result"].items():
                assert res[k] == v, (rel, k)


def test_corrupt_weights_give_clear_error_and_others_work(tmp_path):
    src = ROOT / "models" / "natural"
    bad = tmp_path / "broken"
    bad.mkdir()
    data = (src / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 3])  # truncated
    card = json.loads((src / "card.json").read_text())
    (bad / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="checksum"):
        load_denoiser(ModelInfo("broken", bad, "user", card))
    card.pop("sha256")
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        load_denoiser(ModelInfo("broken", bad, "user", card))
    # the good model still loads and works: it cleans a noisy crop
    den = load_denoiser("natural")
    x0 = photo_crop()
    y = (x0 + sigma_from_255(25) * torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)))[None]
    with torch.no_grad():
        out = den(y, sigma_from_255(25))
    assert out.shape == y.shape and torch.isfinite(out).all()
    noisy_mse = float(((y[0] - x0) ** 2).mean())
    assert float(((out[0] - x0) ** 2).mean()) < noisy_mse / 4  # over 6 dB better
