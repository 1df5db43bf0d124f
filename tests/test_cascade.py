"""The photo cascade (diffusion_core/models/cascade.py): shrinking, the mix table, the routing
by noise level (golden numbers on tiny inputs), the least-squares fit, and loading a cascade
from a model folder."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from diffusion_core.models.cascade import (
    CascadeDenoiser,
    MixTable,
    coarse,
    fit_mix_weights,
    grow,
    luma_part,
    mix,
    overview_factor,
    shrink,
)


def _table() -> MixTable:
    # detail alone up to sigma 0.1, the overview alone from sigma 10, a mix in between
    return MixTable(log_sigma=(math.log(0.1), math.log(1.0), math.log(10.0)),
                    a=(0.0, 0.5, 1.0), b_luma=(1.0, 0.8, 0.0), b_chroma=(1.0, 0.2, 0.0))


class Half(torch.nn.Module):
    """A detail double: D(y, sigma) = y / 2, counting its calls and the levels it got."""

    def __init__(self):
        super().__init__()
        self.sigmas = []

    def forward(self, y, sigma):
        self.sigmas.append(torch.as_tensor(sigma).reshape(-1).tolist())
        return y / 2


class Ones(torch.nn.Module):
    """An overview double: D(y, sigma) = 1 everywhere, recording the input size and level."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, y, sigma):
        self.seen.append((tuple(y.shape), torch.as_tensor(sigma).reshape(-1).tolist()))
        return torch.ones_like(y)


def test_overview_factor_rounds_the_shorter_side_to_the_trained_size():
    assert overview_factor(256, 256, 64) == 4
    assert overview_factor(128, 300, 64) == 2
    assert overview_factor(96, 200, 64) == 2  # 1.5 rounds up
    assert overview_factor(95, 200, 64) == 1
    assert overview_factor(20, 20, 64) == 1
    assert overview_factor(321, 481, 64) == 5


def test_shrink_is_the_block_mean_and_divides_white_noise_by_k():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert shrink(x, 2).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    assert torch.equal(shrink(x, 1), x)
    g = torch.Generator().manual_seed(0)
    n = torch.randn(4, 3, 256, 256, generator=g)
    for k in (2, 4):
        assert shrink(n, k).std().item() == pytest.approx(1 / k, rel=0.02)


def test_shrink_pads_by_reflection_to_a_multiple_of_k():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    # padded to 4x4 by reflecting the last row/column: [[0,1,2,1],[3,4,5,4],[6,7,8,7],[3,4,5,4]]
    assert shrink(x, 2).flatten().tolist() == [2.0, 3.0, 5.0, 6.0]
    assert grow(shrink(x, 2), 2, 3, 3).shape == (1, 1, 3, 3)


def test_coarse_keeps_constant_pictures_and_luma_part_splits_gray_from_colour():
    flat = torch.tensor([0.2, -0.4, 0.9]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    assert torch.allclose(coarse(flat, 4), flat, atol=1e-6)
    v = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert luma_part(v).flatten().tolist() == pytest.approx([0.299] * 3)
    gray = torch.full((1, 3, 1, 1), 0.7)
    assert torch.allclose(luma_part(gray), gray)  # a gray difference is all brightness


def test_mix_table_interpolates_in_log_sigma_and_holds_the_ends():
    t = _table()
    a, bl, bc, ac = t.at(torch.tensor([0.01, 0.1, math.sqrt(0.1), 1.0, math.sqrt(10.0), 80.0]))
    assert torch.equal(ac, a)  # no a_chroma column: the colour follows the brightness
    assert a.tolist() == pytest.approx([0.0, 0.0, 0.25, 0.5, 0.75, 1.0], abs=1e-6)
    assert bl.tolist() == pytest.approx([1.0, 1.0, 0.9, 0.8, 0.4, 0.0], abs=1e-6)
    assert bc.tolist() == pytest.approx([1.0, 1.0, 0.6, 0.2, 0.1, 0.0], abs=1e-6)
    assert MixTable.from_dict(t.to_dict()) == t
    with pytest.raises(ValueError):
        MixTable((0.0, 0.0), (0, 0), (1, 1), (1, 1))
    with pytest.raises(ValueError):
        MixTable((0.0, 1.0), (0,), (1, 1), (1, 1))


def test_light_noise_calls_only_the_detail_network():
    det, ov = Half(), Ones()
    cas = CascadeDenoiser(det, ov, _table(), size=2)
    y = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    out = cas(y, 0.05)
    assert torch.equal(out, y / 2)
    assert ov.seen == [] and cas.calls == {"detail": 1, "overview": 0}


def test_heavy_noise_calls_only_the_overview_at_sigma_over_k():
    det, ov = Half(), Ones()
    cas = CascadeDenoiser(det, ov, _table(), size=2)
    y = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    out = cas(y, torch.tensor([40.0]))
    assert det.sigmas == [] and cas.calls == {"detail": 0, "overview": 1}
    (shape, sig), = ov.seen
    assert shape == (1, 3, 2, 2) and sig == pytest.approx([10.0])  # k = 8 / 2 = 4
    assert torch.allclose(out, torch.ones_like(out))


def test_mixed_level_golden_numbers():
    """sigma = 1: a = 0.5, b_luma = 0.8, b_chroma = 0.2, on a 1x3x2x4 ramp with k = 1
    (size 2 on a 2-pixel-high picture): coarse(d) = d, so the mix is 0.5 * 1 + 0.5 * y / 2."""
    det, ov = Half(), Ones()
    cas = CascadeDenoiser(det, ov, _table(), size=2)
    y = torch.arange(24.0).view(1, 3, 2, 4) / 12 - 1
    out = cas(y, 1.0)
    assert torch.allclose(out, 0.5 + 0.25 * y, atol=1e-6)
    assert cas.calls == {"detail": 1, "overview": 1}


def test_mixed_level_golden_numbers_with_shrinking():
    """k = 2 on a 4x4 picture. By hand at the top-left pixel: d = y / 2 = v / 16 - 0.5 for
    the red ramp v = 0..15; its top-left block mean is 2.5 / 16 - 0.5 = -0.34375, which
    bilinear growth keeps at the corner; the fine red there is -0.5 + 0.34375 = -0.15625,
    its luma part 0.299 * -0.15625 in every channel; so red = 0.5 + 0.5 * -0.34375
    + 0.8 * -0.0467188 + 0.2 * (-0.15625 + 0.0467188) = 0.2688438 and green = 0.5
    + 0.8 * -0.0467188 + 0.2 * 0.0467188 = 0.4719688."""
    det, ov = Half(), Ones()
    cas = CascadeDenoiser(det, ov, _table(), size=2)
    y = torch.zeros(1, 3, 4, 4)
    y[0, 0] = torch.arange(16.0).view(4, 4) / 8 - 1  # red ramp, green and blue 0
    out = cas(y, 1.0)
    d = y / 2
    dc = coarse(d, 2)
    assert dc[0, 0, 0, 0].item() == pytest.approx(-0.34375)
    fine = d - dc
    fl = luma_part(fine)
    expect = 0.5 + 0.5 * dc + 0.8 * fl + 0.2 * (fine - fl)
    assert torch.allclose(out, expect, atol=1e-6)
    golden = [0.2688437, 0.2963250, 0.3275750, 0.3550563, 0.4719687, 0.4775750, 0.4775750,
              0.4831812]
    got = out[0, 0, 0].tolist() + out[0, 1, 0].tolist()
    assert got == pytest.approx(golden, abs=1e-6)


def test_per_picture_levels_route_each_picture_by_its_own_sigma():
    det, ov = Half(), Ones()
    cas = CascadeDenoiser(det, ov, _table(), size=2)
    y = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(3))
    out = cas(y, torch.tensor([0.05, 40.0]))
    assert torch.allclose(out[0], y[0] / 2, atol=1e-6)
    assert torch.allclose(out[1], torch.ones_like(out[1]))


def test_fit_recovers_known_weights():
    g = torch.Generator().manual_seed(4)
    d = torch.randn(3, 3, 16, 16, generator=g)
    o = grow(shrink(torch.randn(3, 3, 16, 16, generator=g), 4), 4, 16, 16)
    dc = coarse(d, 4)
    fine, step = d - dc, o - dc
    fl, sl = luma_part(fine), luma_part(step)
    clean = dc + 0.3 * sl + 0.6 * (step - sl) + 0.9 * fl + 0.4 * (fine - fl)
    assert fit_mix_weights(clean, d, o, 4) == pytest.approx((0.3, 0.6, 0.9, 0.4), abs=1e-6)
    assert torch.allclose(mix((0.3, 0.6, 0.9, 0.4), d, o, 4), clean, atol=1e-5)
    # one weight held: the others are still found exactly, the held one is kept
    assert fit_mix_weights(clean, d, o, 4, fixed={3: 0.4}) == pytest.approx(
        (0.3, 0.6, 0.9, 0.4), abs=1e-6)
    assert fit_mix_weights(clean, d, o, 4, fixed={1: 0.0})[1] == 0.0


def test_separate_colour_share_takes_the_overview_colour_only():
    """a = 0, a_chroma = 1: the brightness of the detail guess's coarse part with the
    overview's colour. With a gray detail guess and an overview of constant colour, the
    result's chroma is the overview's and its luma the detail guess's."""
    t = MixTable((0.0,), a=(0.0,), b_luma=(1.0,), b_chroma=(1.0,), a_chroma=(1.0,))
    cas = CascadeDenoiser(Half(), Ones(), t, size=2)
    y = torch.full((1, 3, 4, 4), 0.4)  # gray: the detail guess is 0.2 everywhere, gray
    out = cas(y, 1.0)
    # overview 1 is gray too: its colour (none) replaces the detail's (none), luma kept
    assert torch.allclose(out, torch.full_like(out, 0.2), atol=1e-6)
    red = CascadeDenoiser(Half(), lambda v, s: torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
                          .expand_as(v), t, size=2)
    out = red(y, 1.0)
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert torch.allclose((out * w).sum(1), torch.full((1, 4, 4), 0.2), atol=1e-6)  # luma kept
    # the colour is the red overview's: its chroma direction is (1 - 0.299, -0.299, -0.299)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([0.2 + 0.701, 0.2 - 0.299,
                                                          0.2 - 0.299]), atol=1e-6)


def test_registry_loads_a_cascade_folder_and_checks_both_files(tmp_path):
    from diffusion_core.maths.precond import EDMDenoiser
    from diffusion_core.models.nets import build_network
    from diffusion_core.models.registry import ModelInfo, ModelLoadError, load_denoiser
    from diffusion_core.training.train import export_model

    torch.manual_seed(0)
    small = dict(in_channels=3, base=8, mults=[1, 2], blocks=[1, 1], emb_dim=16)
    export_model(EDMDenoiser(build_network(small)), tmp_path / "d", {"name": "d"})
    export_model(EDMDenoiser(build_network(small)), tmp_path / "o", {"name": "o"})
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(tmp_path / "d" / "model.safetensors", folder / "model.safetensors")
    shutil.copy(tmp_path / "o" / "model.safetensors", folder / "overview.safetensors")
    card = json.loads((tmp_path / "d" / "card.json").read_text())
    ov_sha = json.loads((tmp_path / "o" / "card.json").read_text())["sha256"]
    card["overview"] = {"file": "overview.safetensors", "sha256": ov_sha, "size": 8,
                        "mix": _table().to_dict()}
    (folder / "card.json").write_text(json.dumps(card))
    den = load_denoiser(ModelInfo("m", folder, "user", card))
    assert isinstance(den, CascadeDenoiser) and den.size == 8 and den.channels == 3
    y = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        out = den(y, 5.0)
    assert out.shape == y.shape and torch.isfinite(out).all()
    assert den.calls == {"detail": 1, "overview": 1}
    bad = dict(card, overview=dict(card["overview"], sha256="0" * 64))
    with pytest.raises(ModelLoadError, match="overview.safetensors"):
        load_denoiser(ModelInfo("m", folder, "user", bad))
    broken = dict(card, overview={"file": "overview.safetensors"})  # no mix table
    with pytest.raises(ModelLoadError, match="overview entry"):
        load_denoiser(ModelInfo("m", folder, "user", broken))
