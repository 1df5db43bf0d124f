"""diffusers interop: the schedule conversion and the eps -> x0 wrapper are tested without the
package; loading a real UNet2DModel folder is skipped cleanly when diffusers is not installed."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from diffusion_core.maths.schedules import make_schedule
from diffusion_core.models import interop
from diffusion_core.models.interop import (
    DiffusersDenoiser,
    DiffusersLoadError,
    alpha_bar_from_scheduler_config,
    betas_from_scheduler_config,
)


def test_linear_config_is_ho_et_al_and_equals_our_linear_at_T1000():
    betas = betas_from_scheduler_config({})  # diffusers' defaults: linear, 1000 steps
    assert np.max(np.abs(betas - np.linspace(1e-4, 0.02, 1000))) <= 1e-12
    np.testing.assert_array_equal(betas, make_schedule("linear", 1000).betas)
    ab = alpha_bar_from_scheduler_config({"num_train_timesteps": 1000})
    assert abs(ab[-1] - 4.035829765375676e-05) < 1e-15
    # diffusers keeps 1e-4 .. 0.02 for other T (it does not scale by 1000 / T as we do)
    np.testing.assert_array_equal(betas_from_scheduler_config({"num_train_timesteps": 100}),
                                  np.linspace(1e-4, 0.02, 100))


def test_other_diffusers_schedules_golden_numbers():
    sd = alpha_bar_from_scheduler_config({"beta_schedule": "scaled_linear", "beta_start": 0.00085,
                                          "beta_end": 0.012})
    np.testing.assert_allclose(sd[[0, 499, 999]], [0.99915, 0.27766965045646763, 0.004660098513077238],
                               rtol=1e-12)
    cos = betas_from_scheduler_config({"beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 200})
    np.testing.assert_allclose(cos, make_schedule("cosine", 200).betas, rtol=1e-12)
    geo = alpha_bar_from_scheduler_config({"beta_schedule": "sigmoid"})
    np.testing.assert_allclose(
        geo[[0, 249, 499, 749, 999]],
        [0.9998507947991829, 0.903744665400934, 0.30193105660219516, 0.0057321988861175005,
         3.968181990533219e-05], rtol=1e-12)
    # diffusers' sigmoid is not our sigmoid_chen
    assert abs(make_schedule("sigmoid_chen", 1000).alpha_bar[499] - geo[499]) > 0.15
    own = [0.1, 0.2, 0.3]
    np.testing.assert_array_equal(betas_from_scheduler_config({"trained_betas": own}), own)
    with pytest.raises(ValueError, match="beta_schedule"):
        betas_from_scheduler_config({"beta_schedule": "laplace"})


class _EpsUNet(nn.Module):
    """Stands in for UNet2DModel: returns a fixed eps and records the timesteps it was asked for."""

    def __init__(self, eps: torch.Tensor):
        super().__init__()
        self.eps = eps
        self.config = SimpleNamespace(in_channels=eps.shape[1])
        self.seen: list[list[int]] = []

    def forward(self, x_t, t):
        self.seen.append(t.tolist())
        return SimpleNamespace(sample=self.eps)


def test_wrapper_turns_the_eps_prediction_into_x0_at_the_matching_step():
    ab = alpha_bar_from_scheduler_config({"num_train_timesteps": 100})
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, 3, 8, 8, generator=g) * 2 - 1
    eps = torch.randn(1, 3, 8, 8, generator=g)
    unet = _EpsUNet(eps)
    den = DiffusersDenoiser(unet, ab)
    assert den.channels == 3
    t = 42
    sigma = math.sqrt((1 - ab[t]) / ab[t])
    y = x0 + sigma * eps  # our VE coordinates at the schedule's step t
    out = den(y, sigma)
    assert unet.seen == [[t]]
    # a perfect eps prediction gives the clean picture back
    assert torch.allclose(out, x0, atol=1e-5)
    # a batch with one noise level each picks each one's step
    den(torch.cat([y, y]), torch.tensor([math.sqrt((1 - ab[5]) / ab[5]), 1e4]))
    assert unet.seen[-1] == [5, 99]


def test_missing_diffusers_gives_a_clear_error(tmp_path, monkeypatch):
    from diffusion_core.models.registry import ModelInfo, ModelLoadError, load_denoiser

    monkeypatch.setattr(interop, "diffusers_available", lambda: False)
    with pytest.raises(DiffusersLoadError, match="install the optional"):
        interop.load_diffusers_denoiser(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    with pytest.raises(ModelLoadError, match="install the optional"):
        load_denoiser(ModelInfo("tiny", tmp_path, "diffusers", {}))


def test_tiny_unet2dmodel_folder_loads_as_a_model(tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    from diffusers import DDPMScheduler, UNet2DModel

    from diffusion_core.models.registry import find_model, list_models, load_denoiser
    from diffusion_core.tasks.restore import restore

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(8, 16), norm_num_groups=4,
                       down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"))
    folder = tmp_path / "models" / "tiny-ddpm"
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    sched = DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")
    sched.save_pretrained(folder / "scheduler")
    monkeypatch.setenv("DIFFUSION_LAB_USER_MODELS", str(tmp_path / "models"))
    names = [m.name for m in list_models()]
    assert "tiny-ddpm" in names and find_model("tiny-ddpm").source == "diffusers"
    den = load_denoiser("tiny-ddpm")
    # the schedule read back is diffusers' own (float32 there, float64 here)
    np.testing.assert_allclose(den.alpha_bar.numpy(), sched.alphas_cumprod.double().numpy(), rtol=1e-4)
    # exact relation to the raw eps prediction at the matching timestep
    t = 30
    ab = float(sched.alphas_cumprod[t])
    sigma = math.sqrt((1 - ab) / ab)
    y = torch.randn(1, 3, 16, 16)
    out = den(y, sigma)
    x_t = y / math.sqrt(1 + sigma**2)
    with torch.no_grad():
        eps = unet(x_t, torch.tensor([t])).sample
    assert out.shape == y.shape and torch.allclose(out, (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab),
                                                   atol=1e-4)
    res = restore(den, torch.zeros(3, 16, 16), make_schedule("linear", 100), step=20, steps=3)
    assert res.steps_run == 3 and torch.isfinite(res.final).all()
