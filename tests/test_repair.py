"""Repair: noise estimation, RePaint inpainting, masks, blind denoising, baselines, CLI, page."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.cli.repair import cli_denoise, cli_inpaint
from diffusion_core.maths.forward import sigma_at_step
from diffusion_core.maths.samplers import StopSampling
from diffusion_core.media.masks import (
    PRESETS,
    MaskError,
    load_mask,
    mask_fraction,
    mask_from_drawing,
    paint_grid,
    preset_mask,
    resize_mask,
    selection_mask,
)
from diffusion_core.media.samples import load_sample
from diffusion_core.tasks.baselines import denoise_nlm, inpaint_biharmonic
from diffusion_core.tasks.blind import blind_denoise, estimate_noise_sigma, noise_words, step_for_noise
from diffusion_core.tasks.inpaint import inpaint, repaint_schedule
from diffusion_core.tasks.metrics import masked_psnr, psnr
from diffusion_core.tasks.pictures import add_noise, damaged_view
from diffusion_core.tasks.restore import default_schedule
from diffusion_core.units import sigma_from_255, sigma_to_255
from tests.doubles import Oracle

ROOT = Path(__file__).resolve().parent.parent
# Ordinary photos (colour and gray) and gray/colour medical pictures. Fine textures (grass,
# tissue) and the mostly-black night sky (hubble) are known weak spots: see estimate_noise_sigma.
ESTIMATE_SAMPLES = ["astronaut", "cat", "coffee", "camera", "retina", "cells", "phantom"]


class Mixture:
    """The exact MMSE denoiser when the data are a few equally likely pictures."""

    def __init__(self, xs):
        self.xs = torch.stack(xs).double()

    def __call__(self, y, sigma):
        s = float(torch.as_tensor(sigma).reshape(-1)[0])
        d = ((y.double() - self.xs) ** 2).flatten(1).sum(1)
        w = torch.softmax(-d / (2 * s * s), 0)
        return (w.reshape(-1, 1, 1, 1) * self.xs).sum(0, keepdim=True).float()


class Blur:
    """A made-up denoiser (3x3 box blur) for properties that must hold for any model."""

    def __call__(self, y, sigma):
        c = y.shape[1]
        k = torch.full((c, 1, 3, 3), 1 / 9.0)
        return torch.nn.functional.conv2d(y, k, padding=1, groups=c)


@pytest.fixture(scope="module")
def small():
    return load_sample("astronaut", max_side=48).tensor  # (3, 48, 48)


# ---------------------------------------------------------------- noise estimation


@pytest.mark.parametrize("name", ESTIMATE_SAMPLES)
def test_noise_estimate_within_15_percent(name):
    x = load_sample(name, max_side=256).tensor
    for sigma_255 in (5, 10, 15, 25, 35, 50):
        for seed in (0, 1):
            noisy = add_noise(x, sigma_255, seed=seed)  # clipped and rounded like a saved photo
            est = sigma_to_255(estimate_noise_sigma(noisy))
            assert abs(est / sigma_255 - 1) < 0.15, (name, sigma_255, seed, est)


def test_noise_estimate_on_pure_noise_matches_skimage():
    from skimage.restoration import estimate_sigma

    g = torch.Generator().manual_seed(3)
    flat = torch.zeros(1, 128, 128) + sigma_from_255(20) * torch.randn(1, 128, 128, generator=g)
    ours = sigma_to_255(estimate_noise_sigma(flat))
    theirs = sigma_to_255(estimate_sigma(flat[0].numpy()))
    assert abs(ours - 20) < 1.0 and abs(theirs - 20) < 1.0


def test_noise_estimate_clean_and_gray_and_numpy():
    x = load_sample("camera", max_side=128).tensor
    assert x.shape[0] == 1
    assert sigma_to_255(estimate_noise_sigma(x)) < 3
    assert estimate_noise_sigma(x[0].numpy()) == pytest.approx(estimate_noise_sigma(x), rel=1e-6)
    with pytest.raises(ValueError):
        estimate_noise_sigma(torch.zeros(1, 2, 2))


def test_sigma_units_and_words():
    assert sigma_from_255(25) == pytest.approx(25 * 2 / 255)
    assert sigma_to_255(sigma_from_255(17)) == pytest.approx(17)
    assert noise_words(0.5) == "practically clean" and "heavy" in noise_words(25)
    sch = default_schedule()
    step = step_for_noise(sch, sigma_from_255(25))
    assert 1 <= step <= sch.T
    assert sigma_at_step(sch, step) == pytest.approx(sigma_from_255(25), rel=0.05)


# ---------------------------------------------------------------- RePaint schedule and inpainting


def test_repaint_schedule_shape():
    assert repaint_schedule(6, 10, 1) == list(range(7))
    seq = repaint_schedule(30, 5, 3)
    assert seq[0] == 0 and seq[-1] == 30
    assert all(abs(b - a) == 1 for a, b in zip(seq, seq[1:]))
    down = sum(1 for a, b in zip(seq, seq[1:]) if b > a)
    assert down == 30 + 5 * 2 * 5  # 5 jump points (5, 10, .., 25), 2 extra rounds of 5 steps
    assert max(seq[seq.index(30) - 1:]) == 30  # the last step is never repeated


@pytest.mark.parametrize("preset", list(PRESETS))
def test_inpaint_oracle_reproduces_original(small, preset):
    m = preset_mask(preset, *small.shape[-2:], seed=1)
    assert m.any()
    for kw in ({"resample": 1, "eta": 1.0}, {"resample": 3, "jump_length": 4, "eta": 1.0},
               {"resample": 1, "eta": 0.0}):
        res = inpaint(Oracle(small), small, m, steps=20, seed=2, **kw)
        assert torch.equal(res.final[:, ~m], small[:, ~m])
        assert (res.final - small).abs().max().item() < 1e-5, kw
        assert res.calls == res.calls_planned > 0


def test_inpaint_picks_the_right_picture_among_several():
    xs = [load_sample(n, max_side=64, mode="rgb").tensor[:, :40, :40]
          for n in ("astronaut", "cat", "coffee", "rocket")]
    xs += [xs[0].flip(-1), -xs[0]]
    den = Mixture(xs)
    for preset in ("blocks", "text"):
        m = preset_mask(preset, 40, 40, seed=1)
        res = inpaint(den, xs[0], m, steps=25, seed=0)
        assert masked_psnr(res.final, xs[0], m) > 40


def test_inpaint_keeps_known_pixels_exactly_and_ignores_the_hole(small):
    m = preset_mask("scratches", *small.shape[-2:], seed=0)
    seen = []
    res = inpaint(Blur(), small, m, steps=8, resample=2, jump_length=3, seed=5,
                  callback=lambda info: seen.append((info["i"], info["n"], info["sigma"])))
    assert torch.equal(res.final[:, ~m], small[:, ~m])
    assert res.final.min() >= -1 and res.final.max() <= 1
    assert [s[0] for s in seen] == list(range(res.calls)) and seen[0][1] == res.calls
    assert seen[0][2] > seen[-1][2] > 0
    scrambled = small.clone()
    scrambled[:, m] = torch.rand(int(small.shape[0]), int(m.sum())) * 2 - 1
    res2 = inpaint(Blur(), scrambled, m, steps=8, resample=2, jump_length=3, seed=5)
    assert torch.equal(res.final, res2.final)


def test_inpaint_gray_stop_and_bad_mask(small):
    gray = small.mean(0, keepdim=True)
    m = preset_mask("blocks", *gray.shape[-2:], seed=0)
    res = inpaint(Oracle(gray), gray, m, steps=10)
    assert res.final.shape == gray.shape and torch.allclose(res.final, gray, atol=1e-5)

    def stop(info):
        if info["i"] == 2:
            raise StopSampling

    res = inpaint(Blur(), gray, m, steps=10, callback=stop)
    assert res.stopped and res.calls == 3 and torch.equal(res.final[:, ~m], gray[:, ~m])
    with pytest.raises(ValueError, match="mask"):
        inpaint(Blur(), gray, m[:-1], steps=3)


def test_all_zero_mask_returns_input_unchanged(small):
    m = torch.zeros(small.shape[-2:], dtype=torch.bool)
    res = inpaint(Blur(), small, m, steps=10)
    assert torch.equal(res.final, small) and res.calls == 0
    assert torch.equal(inpaint_biharmonic(small, m).final, small)
    assert torch.equal(damaged_view(small, m), small)
    assert math.isnan(masked_psnr(small, small, m))


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize("hw", [(128, 128), (96, 160)])
def test_preset_fractions_and_determinism(hw):
    expected = {"blocks": (0.09, 0.11), "dropout": (0.28, 0.32), "scratches": (0.01, 0.12),
                "text": (0.03, 0.30)}
    for name, (lo, hi) in expected.items():
        for seed in range(3):
            m = preset_mask(name, *hw, seed=seed)
            assert m.dtype == torch.bool and tuple(m.shape) == hw
            assert lo <= mask_fraction(m) <= hi, (name, hw, seed, mask_fraction(m))
            assert torch.equal(m, preset_mask(name, *hw, seed=seed))
        if name != "text":
            assert not torch.equal(preset_mask(name, *hw, seed=0), preset_mask(name, *hw, seed=1))
    assert mask_fraction(preset_mask("blocks", 200, 200, area=0.2)) == pytest.approx(0.2, abs=0.01)
    assert mask_fraction(preset_mask("dropout", 200, 200, fraction=0.6)) == pytest.approx(0.6, abs=0.02)
    with pytest.raises(MaskError):
        preset_mask("nope", 10, 10)


def test_drawn_masks():
    canvas = np.zeros((100, 200, 4), np.uint8)  # a transparent canvas ...
    canvas[10:60, 20:120] = (255, 0, 0, 255)  # ... with one opaque red stroke: 50x100 pixels
    canvas[80:90, 150:160] = (255, 255, 255, 40)  # a faint smudge below the threshold
    m = mask_from_drawing(canvas)
    assert mask_fraction(m) == pytest.approx(50 * 100 / (100 * 200))
    assert mask_fraction(mask_from_drawing(canvas, size=(50, 100))) == pytest.approx(0.25, abs=0.01)
    bw = np.zeros((40, 40), np.uint8)
    bw[:, :10] = 255  # white on black, no alpha
    assert mask_fraction(mask_from_drawing(bw)) == pytest.approx(0.25)
    assert mask_fraction(mask_from_drawing(Image.fromarray(bw).convert("RGB"))) == pytest.approx(0.25)
    assert mask_fraction(mask_from_drawing(bw.astype(np.float32) / 255)) == pytest.approx(0.25)
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG")
    assert mask_fraction(load_mask(buf.getvalue(), size=(100, 200))) == pytest.approx(0.25)
    assert mask_fraction(resize_mask(m, (200, 400))) == pytest.approx(0.25)
    with pytest.raises(MaskError):
        load_mask(b"not a picture")
    with pytest.raises(MaskError):
        load_mask(b"")


def test_selection_masks():
    m = selection_mask(100, 100, {"box": [{"x": [9.5, 29.5], "y": [-3, 19.5]}]})
    assert int(m.sum()) == 20 * 20 and bool(m[0, 10]) and not bool(m[20, 10])
    tri = {"lasso": [{"x": [0, 99, 0], "y": [0, 0, 99]}]}
    assert mask_fraction(selection_mask(100, 100, tri)) == pytest.approx(0.5, abs=0.03)
    pts = {"points": [{"x": 50, "y": 50}, {"x": "bad"}]}
    assert int(selection_mask(100, 100, pts, brush=2).sum()) == 25
    assert not selection_mask(10, 10, None).any()
    xs, ys, brush = paint_grid(96, 64, cells=16)
    assert len(xs) == len(ys) and xs.max() < 64 and ys.max() < 96
    every = {"points": [{"x": a, "y": b} for a, b in zip(xs, ys)]}
    assert selection_mask(96, 64, every, brush=brush).all()  # the brush squares cover it all


# ---------------------------------------------------------------- blind denoising


def test_blind_denoise_starts_from_the_noisy_picture(small):
    noisy = add_noise(small, 25, seed=1, clip=False, quantize=False)
    oracle = Oracle(small)
    res = blind_denoise(oracle, noisy, mode="iterative", steps=5, clean=small)
    sch = default_schedule()
    assert res.step == step_for_noise(sch, res.sigma_estimated)
    first_y, first_sigma = oracle.calls[0]
    assert first_sigma == pytest.approx(sigma_at_step(sch, res.step), rel=1e-5)
    assert torch.allclose(first_y[0], noisy, atol=1e-5)  # x_t -> y round trip is exact
    assert torch.allclose(res.final, small, atol=1e-5) and res.steps_run == 5
    assert res.metrics["psnr"] > 60 and res.metrics["noisy_psnr"] < 25
    one = blind_denoise(Oracle(small), noisy, sigma=sigma_from_255(25), mode="one_shot")
    assert torch.allclose(one.final, small, atol=1e-6) and one.sigma_estimated is None
    assert one.steps_run == 1 and one.sigma_255 == pytest.approx(25)


def test_blind_denoise_gray_clean_and_errors():
    x = load_sample("phantom", max_side=64).tensor
    assert x.shape[0] == 1
    res = blind_denoise(Oracle(x), add_noise(x, 30, seed=0), mode="one_shot", clean=x)
    assert sigma_to_255(res.sigma_estimated) == pytest.approx(30, rel=0.2)
    assert res.metrics["psnr"] > 60
    same = blind_denoise(Blur(), x, sigma=0.0)  # nothing to remove
    assert torch.equal(same.final, x) and same.step == 0 and same.steps_run == 0
    with pytest.raises(ValueError):
        blind_denoise(Blur(), x, mode="magic")
    with pytest.raises(ValueError):
        blind_denoise(Blur(), x, sigma=-1.0)


# ---------------------------------------------------------------- classical baselines


def test_biharmonic_fills_a_smooth_picture_and_keeps_the_rest():
    yy, xx = torch.meshgrid(torch.linspace(-0.8, 0.8, 48), torch.linspace(-0.5, 0.5, 64),
                            indexing="ij")
    ramp = torch.stack([yy, xx, (yy + xx) / 2])
    m = preset_mask("blocks", 48, 64, seed=0)
    res = inpaint_biharmonic(ramp, m)
    assert torch.equal(res.final[:, ~m], ramp[:, ~m])
    assert masked_psnr(res.final, ramp, m) > 40 and res.seconds >= 0


def test_nlm_improves_a_noisy_photo():
    x = load_sample("camera", max_side=96).tensor
    noisy = add_noise(x, 25, seed=0)
    res = denoise_nlm(noisy, sigma_from_255(25))
    assert res.final.shape == x.shape
    assert psnr(res.final, x) > psnr(noisy, x) + 2


# ---------------------------------------------------------------- command line (real model, tiny)


def test_cli_inpaint_and_denoise(tmp_path, capsys):
    img = tmp_path / "in.png"
    Image.fromarray((np.asarray(load_sample("cat", max_side=40).tensor.permute(1, 2, 0)) * 127.5
                     + 127.5).round().astype(np.uint8)).save(img)
    out, dmg = tmp_path / "out.png", tmp_path / "damaged.png"
    rc = cli_inpaint([str(img), "--preset", "blocks", "--steps", "3", "--size", "32",
                      "--device", "cpu", "--out", str(out), "--damaged", str(dmg)])
    assert rc == 0 and out.exists() and dmg.exists()
    assert "PSNR in the damaged region" in capsys.readouterr().out
    mask_png = tmp_path / "mask.png"
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 8:16] = 255
    Image.fromarray(mask).save(mask_png)
    rc = cli_inpaint([str(img), "--mask", str(mask_png), "--steps", "2", "--size", "32",
                      "--device", "cpu", "--out", str(out)])
    assert rc == 0
    rc = cli_denoise([str(img), "--add-noise", "25", "--steps", "2", "--size", "32",
                      "--device", "cpu", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "estimated" in text and "non-local means" in text
    rc = cli_denoise([str(img), "--sigma", "20", "--mode", "one_shot", "--size", "32",
                      "--device", "cpu", "--out", str(out)])
    assert rc == 0 and "(given)" in capsys.readouterr().out
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert cli_denoise([str(bad), "--out", str(out)]) == 2
    assert cli_inpaint([str(img), "--mask", str(bad), "--out", str(out)]) == 2
    assert cli_denoise([str(img), "--sigma", "lots", "--out", str(out)]) == 2


@pytest.fixture(scope="module")
def odd_photo(tmp_path_factory):
    """A noisy 301x203 photo (odd, not square) on disk, and its clean original."""
    clean = load_sample("astronaut", max_side=400, mode="rgb").tensor[:, :203, :301]
    noisy = add_noise(clean, 20, seed=0)
    path = tmp_path_factory.mktemp("odd") / "photo.png"
    Image.fromarray((noisy.permute(1, 2, 0).numpy() * 127.5 + 127.5).round().astype(np.uint8)).save(path)
    return path, clean


def _read(path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1) / 127.5 - 1


def test_cli_denoise_writes_the_input_size_by_default(odd_photo, tmp_path, capsys):
    from diffusion_core.cli import main

    img, clean = odd_photo
    out = tmp_path / "x.png"
    assert main(["denoise", str(img), "--sigma", "auto", "--out", str(out)]) == 0
    assert Image.open(out).size == (301, 203)
    text = capsys.readouterr().out
    assert "(301×203)" in text and "estimated" in text
    assert psnr(_read(out), clean) > psnr(_read(img), clean) + 3  # and it did remove noise
    small = tmp_path / "small.png"
    assert main(["denoise", str(img), "--size", "100", "--mode", "one_shot", "--out", str(small)]) == 0
    assert Image.open(small).size == (100, 67)  # asked for: shrunk, aspect kept


def test_cli_large_pictures_run_in_tiles(odd_photo, tmp_path, capsys, monkeypatch):
    import diffusion_core.cli.repair as cli_repair
    from diffusion_core.cli import main
    from diffusion_core.tasks.tiling import TiledDenoiser

    img, clean = odd_photo
    wrapped = []
    real = cli_repair.maybe_tiled

    def spy(*args, **kw):
        den = real(*args, **kw)
        wrapped.append(den)
        return den

    monkeypatch.setattr(cli_repair, "maybe_tiled", spy)
    whole, tiled = tmp_path / "whole.png", tmp_path / "tiled.png"
    args = ["denoise", str(img), "--sigma", "20", "--mode", "one_shot", "--out"]
    assert main(args + [str(whole)]) == 0 and main(args + [str(tiled), "--tile", "128"]) == 0
    assert not isinstance(wrapped[0], TiledDenoiser) and isinstance(wrapped[1], TiledDenoiser)
    assert wrapped[1].tile == 128
    assert Image.open(tiled).size == Image.open(whole).size == (301, 203)
    assert psnr(_read(tiled), _read(whole)) > 35  # no seams worth the name
    inp = tmp_path / "inp.png"
    assert main(["inpaint", str(img), "--preset", "blocks", "--steps", "2", "--tile", "128",
                 "--no-baseline", "--out", str(inp)]) == 0
    assert Image.open(inp).size == (301, 203) and isinstance(wrapped[-1], TiledDenoiser)
    text = capsys.readouterr().out
    assert "PSNR in the damaged region: diffusion" in text and "biharmonic" not in text


def test_every_cli_option_has_help():
    import argparse

    from diffusion_core.cli import build_parser
    from diffusion_core.cli.repair import denoise_parser, inpaint_parser

    top = build_parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {"noise", "restore", "generate", "inpaint", "denoise", "train",
                                "export", "evaluate", "export-web", "export-site"}
    assert all(c.help for c in sub._choices_actions)
    for p in [*sub.choices.values(), inpaint_parser(), denoise_parser()]:
        for act in p._actions:
            if not isinstance(act, argparse._HelpAction):
                assert act.help and act.help.strip(), (p.prog, act.dest)


def test_cli_progress_line_only_on_a_terminal():
    from diffusion_core.cli.common import step_progress
    from diffusion_core.maths.samplers import StepInfo

    buf = io.StringIO()
    assert step_progress("denoise", buf) is None  # a pipe or a log: nothing
    tell = step_progress("denoise", buf, force=True)
    tell(StepInfo(0, 2, 0.5))
    tell(StepInfo(1, 2, 0.1))
    assert buf.getvalue() == "\rdenoise: step 1/2 (noise 0.5)   \rdenoise: step 2/2 (noise 0.1)   \n"


# ---------------------------------------------------------------- the page (AppTest, real model)


def _finish(at, job_key: str, timeout: float = 240.0) -> None:
    """The run happens in a background job: rerun the page until it has shown the result."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        job = at.session_state[job_key] if job_key in at.session_state else None
        assert job is not None, "no job was started"
        if job.done:
            at.run()  # the full run that draws the results
            assert job.state == "done", job.error
            return
        time.sleep(0.3)
        at.run()
        assert not at.exception, [e.message for e in at.exception]
    raise AssertionError(f"{job_key} did not finish in time")


def test_repair_page_inpaints_and_denoises(user_models_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages/3_Repair.py"), default_timeout=240)
    at.session_state["lab_max_side"] = 128
    at.session_state["repair_size"] = 64
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    at.number_input(key="repair_inpaint_steps").set_value(5)
    at.button(key="repair_run_inpaint").click().run()
    assert not at.exception, [e.message for e in at.exception]
    _finish(at, "repair_inpaint_job")
    out = at.session_state["repair_inpaint_result"]
    assert out["diffusion"].shape[:2] == out["original"].shape[:2] and max(out["diffusion"].shape) == 64
    assert out["calls"] == 5 and out["known"]
    assert np.isfinite(out["psnr"]["diffusion"]) and np.isfinite(out["psnr"]["biharmonic"])
    assert any("PSNR" in str(df.value.columns.tolist()) for df in at.dataframe)

    # blind denoising on a gray medical sample with known added noise
    at.selectbox(key="w_repair_lab_sample").set_value("phantom").run()
    at.slider(key="repair_noise_amount").set_value(30)
    at.number_input(key="repair_denoise_steps").set_value(3)
    at.button(key="repair_run_denoise").click().run()
    assert not at.exception, [e.message for e in at.exception]
    _finish(at, "repair_denoise_job")
    d = at.session_state["repair_denoise_result"]
    assert d["diffusion"].ndim == 2  # gray stays gray
    assert d["step"] > 0 and d["steps_run"] == 3
    assert abs(d["sigma_255"] - 30) < 6
    assert set(d["psnr"]) == {"noisy", "diffusion", "nlm"}
    assert any("Measured noise" in m.value for m in at.markdown)
    # the painting mode renders; an empty painting cannot be run
    at.radio(key="repair_mask_source").set_value("paint").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.button(key="repair_run_inpaint").disabled


def test_repair_page_fast_8bit_mode(user_models_dir):
    from streamlit.testing.v1 import AppTest

    from diffusion_core.models.quant import quant_engine

    if quant_engine() is None:
        pytest.skip("no x86 quantized engine in this torch build")
    at = AppTest.from_file(str(ROOT / "pages/3_Repair.py"), default_timeout=240)
    at.session_state["lab_max_side"] = 128
    at.session_state["repair_size"] = 96
    at.run()
    at.radio(key="repair_denoise_mode").set_value("one_shot").run()
    at.slider(key="repair_noise_amount").set_value(25).run()
    at.button(key="repair_run_denoise").click().run()
    assert not at.exception, [e.message for e in at.exception]
    _finish(at, "repair_denoise_job")
    full = at.session_state["repair_denoise_result"]
    assert full["int8"] is False and full["steps_run"] == 1
    at.checkbox(key="repair_int8").check().run()
    assert any("earlier settings" in c.value for c in at.caption)  # the switch is a new setting
    at.button(key="repair_run_denoise").click().run()
    assert not at.exception, [e.message for e in at.exception]
    _finish(at, "repair_denoise_job")
    fast = at.session_state["repair_denoise_result"]
    assert fast["int8"] is True
    assert fast["psnr"]["diffusion"] > fast["psnr"]["noisy"] + 5
    assert abs(fast["psnr"]["diffusion"] - full["psnr"]["diffusion"]) < 0.5
    assert any("8-bit" in i.caption for im in at.image for i in im.proto.imgs)


def test_repair_page_runs_in_the_background_and_can_be_stopped(user_models_dir):
    """The page starts a job and returns at once; Stop keeps the latest guess; a new visit
    to the page (same session) shows the running job."""
    from streamlit.testing.v1 import AppTest

    page = str(ROOT / "pages/3_Repair.py")
    at = AppTest.from_file(page, default_timeout=240)
    at.session_state["lab_max_side"] = 128
    at.session_state["repair_size"] = 64
    at.run()
    at.number_input(key="repair_inpaint_steps").set_value(500)
    at.number_input(key="repair_resample").set_value(10)
    at.button(key="repair_run_inpaint").click().run()
    assert not at.exception, [e.message for e in at.exception]
    job = at.session_state["repair_inpaint_job"]
    assert not job.done and at.button(key="repair_run_inpaint").disabled  # the page returned
    try:
        _stop_from_another_visit(page, job)
    finally:
        job.stop()
    at.run()
    out = at.session_state["repair_inpaint_result"]
    assert out["stopped"] and 0 < out["calls"] < 5000
    assert any("Stopped early" in w.value for w in at.warning)


def _stop_from_another_visit(page: str, job) -> None:
    import time

    from streamlit.testing.v1 import AppTest

    for _ in range(400):
        if job.snapshot()["i"] >= 2:
            break
        time.sleep(0.05)
    # coming back to the page shows the running job, with its Stop button
    again = AppTest.from_file(page, default_timeout=240)
    again.session_state["repair_inpaint_job"] = job
    again.run()
    assert not again.exception, [e.message for e in again.exception]
    assert any("Model call" in str(p.proto) for p in again.get("progress"))
    stop = again.button(key=f"repair_inpaint_stop_{job.id}")
    stop.click().run()
    assert job.wait(60) and job.state == "stopped"
