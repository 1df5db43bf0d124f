"""8-bit CPU path (diffusion_core.models.quant): the fixed-sigma rewrite is exact in float32, the
int8 network is really quantized and stays close to the float model, caching by sigma."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.maths.precond import EDMDenoiser
from diffusion_core.models import quant
from diffusion_core.models.nets import DenoiserUNet
from diffusion_core.models.registry import get_int8_denoiser, load_denoiser
from diffusion_core.tasks.evaluate import evaluate_denoise, markdown_table
from diffusion_core.tasks.metrics import psnr

pytestmark = pytest.mark.skipif(quant.quant_engine() is None,
                                reason="no x86 quantized engine in this torch build")


def _random_net(seed: int = 0) -> DenoiserUNet:
    # every weight random (the zero-initialised convs would hide mistakes)
    g = torch.Generator().manual_seed(seed)
    net = DenoiserUNet(in_channels=3, base=8, mults=(1, 2, 4), blocks=(1, 1, 2), emb_dim=16)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return net.eval()


@pytest.mark.parametrize("shape", [(1, 3, 37, 50), (2, 3, 16, 24), (1, 1, 19, 8)])
@pytest.mark.parametrize("sigma", [0.01, 0.2, 3.0])
def test_fixed_sigma_body_is_the_network_in_float(shape, sigma):
    net = _random_net()
    den = EDMDenoiser(net).eval()
    y = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    body = quant.FixedSigmaBody(net, float(quant.c_noise(torch.tensor(sigma)))).eval()
    with torch.inference_mode():
        ref = den(y, torch.tensor([sigma]))
        z, hw = quant.body_input(net, y, sigma)
        out = quant.body_output(body(z), y, sigma, hw)
    assert out.shape == ref.shape == y.shape
    err = (out - ref).abs().max().item()
    assert err <= 1e-5 * max(ref.abs().max().item(), 1.0), err  # float rounding only
    assert (ref - y).abs().max() > 0.5 * min(sigma, 1.0)  # a real correction, not ~identity


def _photo(size: int = 96) -> torch.Tensor:
    from diffusion_core.media.photos import bundled_photo_paths, read_rgb_uint8

    a = read_rgb_uint8(bundled_photo_paths()[-1])  # not among the first calibration crops
    top, left = (a.shape[0] - size) // 3, (a.shape[1] - size) // 3
    a = a[top:top + size, left:left + size]
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / 127.5 - 1


@pytest.fixture(scope="module")
def shipped():
    """The shipped photo model's patch network: what the 8-bit path quantizes (natural is a
    cascade whose small overview network stays in float)."""
    den = load_denoiser("natural")
    return getattr(den, "detail", den)


def test_the_cascade_8_bit_version_stays_close_to_the_float_cascade():
    from diffusion_core.models.cascade import CascadeDenoiser
    from diffusion_core.models.registry import int8_version

    den = load_denoiser("natural")
    assert isinstance(den, CascadeDenoiser)
    q = int8_version(den)
    assert isinstance(q, CascadeDenoiser) and isinstance(q.detail, quant.Int8Denoiser)
    assert q.overview is den.overview  # the overview stays in float
    sigma = 2 * 50 / 255
    x0 = _photo()
    y = (x0 + sigma * torch.randn(x0.shape, generator=torch.Generator().manual_seed(8)))[None]
    with torch.inference_mode():
        f32 = den(y, torch.tensor([sigma]))[0]
        i8 = q(y, torch.tensor([sigma]))[0]
    assert q.calls == {"detail": 1, "overview": 1}
    assert psnr(i8.clamp(-1, 1), f32.clamp(-1, 1)) > 40


def test_int8_is_quantized_and_close_to_float(shipped):
    sigma = 2 * 25 / 255
    q = quant.Int8Denoiser(shipped)
    body = q.body(sigma)
    kinds = {type(m).__module__.split(".")[3] if m.__module__.startswith("torch.ao.nn.")
             else "float" for m in body.modules() if "Conv" in type(m).__name__}
    assert any(k in ("quantized", "intrinsic") for k in kinds), kinds  # int8 convolutions
    assert isinstance(body.tail, torch.nn.Conv2d)  # the last layer stays float32
    assert isinstance(body.head, torch.nn.Conv2d)  # and the first
    x0 = _photo()
    y = (x0 + sigma * torch.randn(x0.shape, generator=torch.Generator().manual_seed(3)))[None]
    with torch.inference_mode():
        f32 = shipped(y, torch.tensor([sigma]))[0]
    i8 = q(y, sigma)[0]
    assert i8.shape == f32.shape
    gain_f32 = psnr(f32.clamp(-1, 1), x0) - psnr(y[0], x0)
    gain_i8 = psnr(i8.clamp(-1, 1), x0) - psnr(y[0], x0)
    assert gain_f32 > 6 and gain_i8 > gain_f32 - 0.3, (gain_f32, gain_i8)
    assert psnr(i8.clamp(-1, 1), f32.clamp(-1, 1)) > 40  # int8 vs float outputs


def test_each_float_part_brings_int8_closer_to_float(shipped):
    # int8 everywhere but the tail, then the float32 head, then float32 additions, then the
    # default (also the last block's second convolution in float32): each step brings the
    # output nearer the float model's, on a noisy photo crop
    sigma = 2 * 25 / 255
    net = shipped.net
    x0 = _photo(96)[None]
    y = x0 + sigma * torch.randn(x0.shape, generator=torch.Generator().manual_seed(6))
    with torch.inference_mode():
        f32 = shipped(y, torch.tensor([sigma]))
        z, hw = quant.body_input(net, y, sigma)
        errs = {}
        for name, kw in (("tail only", dict(float_layers=("tail",), float_adds=False)),
                         ("head", dict(float_layers=("head", "tail"), float_adds=False)),
                         ("head, adds", dict(float_layers=("head", "tail"), float_adds=True)),
                         ("default", {})):
            q = quant.quantize_body(net, sigma, **kw)
            errs[name] = (quant.body_output(q(z), y, sigma, hw) - f32).pow(2).mean().item()
    assert errs["head"] < errs["tail only"], errs
    assert errs["head, adds"] < 0.6 * errs["tail only"], errs
    assert errs["default"] < errs["head, adds"], errs


def test_last_block_names_and_default_float_layers():
    net = _random_net()  # blocks (1, 1, 2): the decoder has two groups of one block
    body = quant.FixedSigmaBody(net, 0.0)
    assert body.layer_name("last.conv2") == "dec.1.0.conv2"
    assert body.layer_name("last.conv1") == "dec.1.0.conv1"
    assert body.layer_name("head") == "head"
    q = quant.quantize_body(net, 0.2, quant.calibration_pictures(3, 32, 2))
    mods = dict(q.named_modules())
    assert set(quant.FLOAT_LAYERS) == {"head", "tail", "last.conv2"} and quant.FLOAT_ADDS
    for name in ("head", "tail", "dec.1.0.conv2"):
        assert type(mods[name]) is torch.nn.Conv2d, (name, type(mods[name]))
    assert "quantized" in type(mods["dec.1.0.conv1"]).__module__  # its neighbour is int8
    assert "quantized" in type(mods["enc.0.0.conv2"]).__module__


def test_seven_bit_activations_also_work(shipped):
    sigma = 2 * 15 / 255
    net = shipped.net
    q = quant.quantize_body(net, sigma, quant.calibration_pictures(3, 64, 3), full_range=False)
    x0 = _photo(64)[None]
    y = x0 + sigma * torch.randn(x0.shape, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        f32 = shipped(y, torch.tensor([sigma]))
        z, hw = quant.body_input(net, y, sigma)
        i8 = quant.body_output(q(z), y, sigma, hw)
    assert psnr(i8[0].clamp(-1, 1), f32[0].clamp(-1, 1)) > 38


def test_bodies_cached_per_sigma_and_mixed_batches(shipped):
    q = quant.Int8Denoiser(shipped, max_cached=2, calibration=quant.calibration_pictures(3, 64, 2))
    s1, s2, s3 = 0.1, 0.3, 0.5
    b1 = q.body(s1)
    assert q.body(s1) is b1
    assert q.body(torch.tensor([s1]).item()) is b1  # float32 round trip: the same body
    q.body(s2)
    q.body(s3)  # evicts s1 (least recently used)
    assert len(q._bodies) == 2 and q.body(s1) is not b1
    y = torch.randn(2, 3, 24, 16, generator=torch.Generator().manual_seed(5)) * 0.5
    both = q(y, torch.tensor([s1, s2]))
    assert torch.allclose(both[0], q(y[:1], s1)[0]) and torch.allclose(both[1], q(y[1:], s2)[0])
    gray = q(y[:1, :1], s2)
    assert gray.shape == (1, 1, 24, 16) and torch.isfinite(gray).all()


def test_unsupported_models_are_refused_with_a_reason():
    class Other(torch.nn.Module):
        in_channels = 3

        def forward(self, x, c):
            return x

    ok, why = quant.int8_supported(EDMDenoiser(Other()))
    assert not ok and "own networks" in why
    with pytest.raises(ValueError, match="own networks"):
        quant.Int8Denoiser(EDMDenoiser(Other()))
    assert get_int8_denoiser("natural") is get_int8_denoiser("natural")


def test_evaluator_reports_the_int8_row(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray((rng.random((40, 36, 3)) * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    res = evaluate_denoise(tmp_path, sigmas=(25,), model="natural", baselines=(), int8=True,
                           log=lambda s: None)
    row = res["summary"]["25"]["model:natural:int8"]
    assert row["images"] == 2 and np.isfinite(row["psnr"]) and row["s_per_mp"] > 0
    assert abs(row["psnr"] - res["summary"]["25"]["model:natural"]["psnr"]) < 0.5
    assert "model:natural:int8" in markdown_table(res)
