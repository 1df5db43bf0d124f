"""The error-per-noise-level benchmark's measures (diffusion_core.tasks.sigma_error) on tiny
pictures with answers known in closed form. No model, no data folder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from diffusion_core.tasks.sigma_error import (
    BLUR_WIDTHS,
    block_energy,
    box_blur3,
    chroma,
    chroma_roughness,
    confetti_share,
    confetti_threshold,
    gaussian_blur,
    sigma_error_table,
)
from diffusion_core.training.data import _colourize


def _from_ycbcr(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor) -> torch.Tensor:
    """(N, H, W) luma and chroma (BT.601 full range, no offset) -> (N, 3, H, W) RGB, float64."""
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return torch.stack([r, g, b], 1).double()


def _checker(n: int, h: int, w: int) -> torch.Tensor:
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((-1.0) ** (i + j)).double().expand(n, h, w)


def _smooth(n: int, side: int, g: torch.Generator) -> torch.Tensor:
    """(n, 3, side, side) smooth pictures in about [-0.8, 0.8]: bicubic-upsampled 4x4 colour."""
    low = torch.rand(n, 3, 4, 4, generator=g, dtype=torch.float64) * 1.6 - 0.8
    return F.interpolate(low, size=(side, side), mode="bicubic", align_corners=False)


# ---- chroma and roughness --------------------------------------------------------------------

def test_chroma_is_the_repository_ycbcr_and_pillows():
    g = torch.Generator().manual_seed(0)
    # the inverse of the training data's colourizer (BT.601 full range, no offset)
    y = torch.rand(2, 1, 8, 8, generator=g) * 0.5 + 0.25
    c = (torch.rand(2, 2, 8, 8, generator=g) - 0.5) * 0.2
    rgb = _colourize(y, c)
    assert torch.allclose(chroma(rgb), c.double(), atol=2e-6)
    # Pillow's YCbCr (JPEG: the same matrix, +128 on 0-255 levels)
    u8 = torch.randint(0, 256, (16, 16, 3), generator=g, dtype=torch.uint8).numpy()
    pil = np.asarray(Image.fromarray(u8, "RGB").convert("YCbCr")).astype(np.float64)
    ours = chroma(torch.from_numpy(u8).permute(2, 0, 1).double()).numpy()[0]
    assert np.abs(ours.transpose(1, 2, 0) + 128 - pil[..., 1:]).max() <= 1.0
    # gray has no chroma, in any units
    gray = torch.rand(1, 1, 5, 5, generator=g).expand(1, 3, 5, 5) * 2 - 1
    assert chroma(gray).abs().max() < 1e-12


def test_box_blur_reflects_the_border():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    # corner (0, 0): rows {1, 0, 1} x cols {1, 0, 1} of [[0,1,2],[3,4,5],[6,7,8]]
    assert box_blur3(x)[0, 0, 0, 0].item() == pytest.approx((4 + 3 + 4 + 1 + 0 + 1 + 4 + 3 + 4) / 9)
    assert box_blur3(x)[0, 0, 1, 1].item() == pytest.approx(4.0)


def test_constant_chroma_has_roughness_zero_whatever_the_luma():
    g = torch.Generator().manual_seed(1)
    y = torch.rand(3, 12, 10, generator=g, dtype=torch.float64) - 0.5
    cb = torch.tensor([0.0, 0.1, -0.2], dtype=torch.float64).view(3, 1, 1).expand(3, 12, 10)
    cr = torch.tensor([0.0, -0.05, 0.3], dtype=torch.float64).view(3, 1, 1).expand(3, 12, 10)
    assert chroma_roughness(_from_ycbcr(y, cb, cr)).abs().max().item() < 1e-12
    assert chroma_roughness(torch.zeros(1, 3, 4, 4)).item() == 0.0  # black: no 0/0
    assert chroma_roughness(torch.full((3, 4, 4), 0.3)).shape == (1,)  # one (3, H, W) picture


def test_checkerboard_chroma_roughness_is_64_over_81():
    # every pixel's 3x3 box holds 5 of its sign and 4 of the other (borders reflected too):
    # the blur keeps 1/9 of it, the residual is 8/9 of it: energy (8/9)^2 a^2 over variance a^2
    g = torch.Generator().manual_seed(2)
    y = torch.rand(2, 8, 6, generator=g, dtype=torch.float64) - 0.5
    cb = 0.2 * _checker(2, 8, 6)
    x = _from_ycbcr(y, cb, torch.zeros_like(cb))
    assert torch.allclose(chroma_roughness(x), torch.full((2,), 64 / 81, dtype=torch.float64),
                          atol=1e-9)
    x2 = _from_ycbcr(y, cb, -0.1 * _checker(2, 8, 6))
    assert torch.allclose(chroma_roughness(x2), torch.full((2,), 64 / 81, dtype=torch.float64),
                          atol=1e-9)


def test_white_chroma_noise_roughness_is_about_8_over_9():
    g = torch.Generator().manual_seed(3)
    cb, cr = torch.randn(2, 1, 128, 128, generator=g, dtype=torch.float64) * 0.1
    x = _from_ycbcr(torch.zeros(1, 128, 128, dtype=torch.float64), cb, cr)
    # residual = n (1 - 1/9) - (8 neighbours) / 9: variance (64 + 8) / 81
    assert chroma_roughness(x).item() == pytest.approx(8 / 9, rel=0.03)


# ---- the Gaussian blur -----------------------------------------------------------------------

def test_gaussian_blur_matches_reflect_padded_convolution():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 3, 20, 16, generator=g, dtype=torch.float64)
    for width in (0.7, 1.5, 3.0):
        r = int(math.ceil(4 * width))
        t = torch.arange(-r, r + 1, dtype=torch.float64)
        k = torch.exp(-0.5 * (t / width) ** 2)
        k = k / k.sum()
        p = F.pad(x.view(6, 1, 20, 16), (r, r, r, r), mode="reflect")
        ref = F.conv2d(F.conv2d(p, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1)).view(2, 3, 20, 16)
        assert torch.allclose(gaussian_blur(x, width), ref, atol=1e-12)


def test_gaussian_blur_ends():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 3, 9, 7, generator=g, dtype=torch.float64)
    assert torch.equal(gaussian_blur(x, 0.0), x)
    mean = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    assert torch.allclose(gaussian_blur(x, math.inf), mean, atol=1e-12)
    # far wider than the picture: flat, a mean in which the reflected borders weigh the ends half
    wide = gaussian_blur(x, 200.0)
    assert (wide.amax(dim=(2, 3)) - wide.amin(dim=(2, 3))).max() < 1e-3
    rows, cols = _end_half(9), _end_half(7)
    expected = torch.einsum("h,w,nchw->nc", rows, cols, x)
    assert torch.allclose(wide.mean(dim=(2, 3)), expected, atol=1e-3)
    const = torch.full((1, 1, 9, 7), 0.25, dtype=torch.float64)
    for width in BLUR_WIDTHS:
        assert torch.allclose(gaussian_blur(const, width), const, atol=1e-12)


# ---- the table -------------------------------------------------------------------------------

def _end_half(n: int) -> torch.Tensor:
    """Weights of a mean whose two end samples count half, summing to 1."""
    w = torch.ones(n, dtype=torch.float64)
    w[0] = w[-1] = 0.5
    return w / w.sum()


def _clean(seed: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(4, 3, 32, 32, generator=g) * 2 - 1) * 0.6 + _smooth(4, 32, g).float() * 0.3


SIGMAS = (0.01, 0.1, 0.5, 2.0, 80.0)


def test_oracle_denoiser_has_zero_error_and_the_clean_roughness():
    clean = _clean()
    rows = sigma_error_table(lambda y, s: clean.clone(), clean, SIGMAS, torch.Generator().manual_seed(0))
    assert [r.sigma for r in rows] == list(SIGMAS)
    rough = chroma_roughness(clean).mean().item()
    for r in rows:
        assert r.mse == 0.0 and r.beats_mean_colour
        assert r.roughness == pytest.approx(rough, rel=1e-12)
        assert r.smooth_enough(rough) and not r.smooth_enough(rough / 4)


def test_identity_denoiser_error_is_sigma_squared():
    clean = _clean()
    rows = sigma_error_table(lambda y, s: y, clean, SIGMAS, torch.Generator().manual_seed(1))
    for r in rows:
        # 4 * 3 * 32 * 32 = 12288 squared normals: relative spread sqrt(2 / 12288) = 1.3 %
        assert r.mse == pytest.approx(r.sigma**2, rel=0.08)
        assert r.noisy_mse == pytest.approx(r.mse, rel=1e-5)
    assert not rows[-1].beats_mean_colour and rows[0].beats_mean_colour


def test_mean_colour_guess_error_is_the_pictures_variance():
    clean = _clean()
    var = clean.double().numpy().reshape(4, 3, -1).var(axis=2).mean()
    means = clean.mean(dim=(2, 3), keepdim=True).expand_as(clean)
    rows = sigma_error_table(lambda y, s: means.clone(), clean, SIGMAS, torch.Generator().manual_seed(2))
    for r in rows:
        assert r.mean_colour_mse == pytest.approx(var, rel=1e-9)
        assert r.mse == pytest.approx(var, rel=1e-6)
        assert r.roughness == 0.0


def test_best_blur_is_never_worse_than_the_noisy_input_and_finds_smooth_pictures():
    g = torch.Generator().manual_seed(7)
    smooth = _smooth(3, 32, g).float()
    rows = sigma_error_table(lambda y, s: y, smooth, (1e-3, 0.1, 0.5, 5.0), torch.Generator().manual_seed(3))
    for r in rows:
        assert r.best_blur_mse <= r.noisy_mse
    assert rows[2].best_blur_mse < 0.05 * rows[2].noisy_mse  # blurring a smooth picture wins
    assert all(w > 0 for w in rows[2].best_blur_widths)
    # on fine texture at a tiny sigma the best blur is none
    rough = _clean()
    (r,) = sigma_error_table(lambda y, s: y, rough, (1e-3,), torch.Generator().manual_seed(4))
    assert r.best_blur_widths == [0.0] * 4 and r.best_blur_mse == pytest.approx(r.noisy_mse)
    # at sigma 80 only the flattest blurs are any good
    (r,) = sigma_error_table(lambda y, s: y, rough, (80.0,), torch.Generator().manual_seed(5))
    assert min(r.best_blur_widths) >= 16 and r.best_blur_mse < 80**2 / 100


def test_one_call_per_sigma_on_one_noise_draw():
    clean = _clean()
    calls = []

    def den(y, s):
        calls.append((s, y.clone()))
        return y

    sigma_error_table(den, clean, SIGMAS, torch.Generator().manual_seed(8))
    assert [s for s, _ in calls] == list(SIGMAS)
    assert all(y.dtype == clean.dtype and y.shape == clean.shape for _, y in calls)
    noise = [(y.double() - clean.double()) / s for s, y in calls]
    for n in noise[2:]:  # the same noise at every level (up to the float32 input's rounding)
        assert torch.allclose(n, noise[-1], atol=1e-5)
    a = sigma_error_table(lambda y, s: 0.5 * y, clean, SIGMAS, torch.Generator().manual_seed(9))
    b = sigma_error_table(lambda y, s: 0.5 * y, clean, SIGMAS, torch.Generator().manual_seed(9))
    c = sigma_error_table(lambda y, s: 0.5 * y, clean, SIGMAS, torch.Generator().manual_seed(10))
    assert [r.as_dict() for r in a] == [r.as_dict() for r in b]
    assert a[-1].mse != c[-1].mse


def test_table_rejects_a_wrong_shape():
    clean = _clean()
    with pytest.raises(ValueError):
        sigma_error_table(lambda y, s: y[:, :1], clean, (1.0,), torch.Generator())
    with pytest.raises(ValueError):
        sigma_error_table(lambda y, s: y, clean[:, :1], (1.0,), torch.Generator())


# ---- confetti --------------------------------------------------------------------------------

def _photos(n: int, g: torch.Generator) -> torch.Tensor:
    """Smooth pictures with a little chroma grain of differing strength per picture."""
    base = _smooth(n, 64, g)
    grain = torch.randn(n, 3, 64, 64, generator=g, dtype=torch.float64)
    return base + grain * torch.rand(n, 1, 1, 1, generator=g, dtype=torch.float64) * 0.02


def test_block_energy_leaves_out_partial_blocks():
    x = torch.zeros(2, 3, 40, 50)
    assert block_energy(x).shape == (2, 2, 3)
    with pytest.raises(ValueError):
        confetti_share(torch.zeros(1, 3, 8, 8), 1.0)


def test_confetti_share_smooth_photo_and_salt_and_pepper():
    g = torch.Generator().manual_seed(11)
    photos = _photos(100, g)  # 100 x 16 blocks
    thr = confetti_threshold(photos)
    assert thr > 0
    # strictly above the interpolated 99th percentile of 1600 distinct energies: 16 blocks
    assert confetti_share(photos, thr).mean().item() == pytest.approx(0.01, abs=1e-12)
    assert confetti_threshold(list(photos.unbind(0))) == pytest.approx(thr, rel=1e-12)

    assert confetti_share(_smooth(4, 64, g), thr).max().item() == 0.0
    assert confetti_share(torch.full((1, 3, 64, 64), -0.4), thr).item() == 0.0

    # salt-and-pepper chroma: a fifth of the pixels turned to saturated random colours
    x = _smooth(4, 64, g)
    hit = torch.rand(4, 1, 64, 64, generator=g) < 0.2
    colour = torch.randint(0, 2, (4, 3, 64, 64), generator=g).double() * 2 - 1
    x = torch.where(hit, colour, x)
    assert confetti_share(x, thr).min().item() >= 0.95


# ---- the bench's script, without the data ----------------------------------------------------

def test_bench_skips_without_cbsd68_and_draws_its_plot(tmp_path, capsys):
    from bench.sigma_error import SIGMAS, main, plot_png

    assert main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "x")]) == 0
    assert "skipped" in capsys.readouterr().out and not list(tmp_path.iterdir())

    def rows(scale):
        return [{"sigma": s, "mse": scale * min(s * s, 0.3), "mean_colour_mse": 0.22,
                 "best_blur_mse": min(1.5 * s * s, 0.7), "smooth_enough": s < 0.1} for s in SIGMAS]

    res = {"crops": ["a.png"] * 8, "crop_side": 128,
           "models": {"a": {"rows": rows(0.5)}, "b": {"rows": rows(0.4)}}}
    plot_png(res, tmp_path / "p.png")
    im = Image.open(tmp_path / "p.png")
    assert im.size == (1000, 640) and len(im.convert("RGB").getcolors(1 << 20)) > 10
