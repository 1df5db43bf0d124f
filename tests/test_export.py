"""Exports of a restore run (GIF, MP4, PNG, JSON) and the `restore` command line."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.maths.forward import x_at_step
from diffusion_core.maths.schedules import make_schedule
from diffusion_core.media.decode import load_image
from diffusion_core.media.export import (
    fit_size,
    forward_steps,
    frames_gif,
    frames_mp4,
    image_png,
    metrics_json,
    preview,
    restore_animation_frames,
    strip_png,
    write_restore_animation,
)
from diffusion_core.media.samples import sample_path
from diffusion_core.models.registry import get_denoiser
from diffusion_core.tasks.restore import restore

ROOT = Path(__file__).resolve().parent.parent


def _distinct_frames(n=6, c=3, h=37, w=50):
    g = torch.Generator().manual_seed(0)
    return [torch.rand(c, h, w, generator=g) * 2 - 1 for _ in range(n)]


def _psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def small_run():
    x0 = load_image(sample_path("astronaut"), max_side=48).tensor
    sch = make_schedule("linear", 1000)
    den = get_denoiser("natural", "cpu")
    res = restore(den, x0, sch, step=100, steps=3, seed=3)
    return x0, sch, res


def test_gif_decodes_to_every_frame(tmp_path):
    frames = _distinct_frames()
    path = tmp_path / "a.gif"
    data = frames_gif(frames, path)
    assert path.read_bytes() == data
    arr = iio.imread(data, index=None, extension=".gif")
    assert arr.shape[:3] == (6, 37, 50)
    # the first and last frames are held longer than the others
    durations = []
    with Image.open(io.BytesIO(data)) as im:
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
    assert durations[0] > durations[1] and durations[-1] > durations[1]


def test_gif_gray_and_large_frames_are_resized():
    big = [torch.zeros(1, 800, 600) + v for v in (-0.5, 0.0, 0.5)]
    arr = iio.imread(frames_gif(big, max_side=384), index=None, extension=".gif")
    assert arr.shape[:3] == (3, 384, 288)
    tiny = [torch.zeros(1, 32, 32) + v for v in (-0.5, 0.5)]
    arr = iio.imread(frames_gif(tiny, min_side=256), index=None, extension=".gif")
    assert arr.shape[:3] == (2, 256, 256)


def test_mp4_decodes_with_even_size_and_holds(tmp_path):
    frames = _distinct_frames(5, h=33, w=47)  # odd sizes: padded to even for H.264
    data = frames_mp4(frames, tmp_path / "a.mp4", fps=10, hold_s=0)
    assert (tmp_path / "a.mp4").read_bytes() == data
    arr = iio.imread(data, index=None, extension=".mp4")
    assert arr.shape == (5, 34, 48, 3)
    held = iio.imread(frames_mp4(frames, fps=10, hold_s=0.5), index=None, extension=".mp4")
    assert held.shape[0] == 5 + 2 * 4  # first and last shown 5 frames each at 10 fps
    # flat colours survive the (lossy) encoding
    flat = [torch.tensor([v, -v, 0.2]).view(3, 1, 1).expand(3, 32, 48) for v in (-0.6, 0.0, 0.6)]
    dec = iio.imread(frames_mp4(flat, fps=10, hold_s=0), index=None, extension=".mp4")
    for got, want in zip(dec, flat):
        assert np.abs(got.astype(float) - _uint8(want)).mean() < 6


def test_frames_must_match_and_exist():
    with pytest.raises(ValueError):
        frames_gif([])
    with pytest.raises(ValueError):
        frames_mp4([torch.zeros(3, 8, 8), torch.zeros(3, 8, 10)])


def test_sizes_and_previews():
    assert fit_size(1000, 500, 384) == (384, 192)
    assert fit_size(32, 32, 384, min_side=200) == (192, 192)
    assert fit_size(100, 80, 384) == (100, 80)
    assert preview(torch.zeros(1, 20, 30)).shape == (20, 30, 3)
    assert preview(np.zeros((10, 12), np.uint8)).shape == (10, 12, 3)
    assert forward_steps(100, 4) == [0, 25, 50, 75]
    assert forward_steps(3, 12) == [0, 1, 2]
    assert forward_steps(0, 12) == []


def test_animation_is_noising_then_restoring(small_run):
    x0, sch, res = small_run
    seq = restore_animation_frames(x0, res.noise, sch, 100, res, n_forward=4)
    assert len(seq) == 4 + len(res.frames) + 1
    assert torch.equal(seq[0], x0)
    assert torch.allclose(seq[3], x_at_step(x0, res.noise, sch, 75))
    assert torch.allclose(seq[4], res.start, atol=1e-5)  # the reverse process starts here
    assert torch.equal(seq[-1], res.final)
    gen = restore_animation_frames(None, None, sch, 1000, res)
    assert len(gen) == len(res.frames) + 1
    arr = iio.imread(frames_gif(seq), index=None, extension=".gif")
    assert arr.shape[0] == len(seq)


def test_write_restore_animation_mp4_and_gif(small_run, tmp_path):
    x0, sch, res = small_run
    n = len(restore_animation_frames(x0, res.noise, sch, 100, res))
    mp4 = iio.imread(write_restore_animation(tmp_path / "a.mp4", x0, sch, 100, res),
                     index=None, extension=".mp4")
    assert mp4.shape[1:] == (240, 240, 3)  # 48 px frames enlarged 5x (nearest) to watch
    assert mp4.shape[0] == n + 2 * (9 - 1)  # first and last held 0.9 s at 10 fps
    write_restore_animation(tmp_path / "a.gif", x0, sch, 100, res)
    assert iio.imread(tmp_path / "a.gif", index=None).shape[0] == n


def test_metrics_json_agrees_with_the_saved_png(small_run, tmp_path):
    x0, _, res = small_run
    d = json.loads(metrics_json(res, extra={"seed": 3}))
    assert d["settings"] == {"seed": 3}
    assert d["steps_run"] == 3 and len(d["per_step"]) == 3
    png = tmp_path / "restored.png"
    png.write_bytes(image_png(res.final))
    saved = np.asarray(Image.open(png).convert("RGB"))
    assert saved.shape == (48, 48, 3)
    assert d["final"]["psnr"] == pytest.approx(_psnr_uint8(saved, _uint8(x0)), abs=0.01)
    # no NaN / Infinity in the text: strict JSON parsers accept it
    json.loads(metrics_json(res), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    strip = Image.open(io.BytesIO(strip_png(res)))
    assert strip.width > strip.height > 0


def test_metrics_json_replaces_infinities(small_run):
    x0, sch, _ = small_run
    clean = restore(None, x0, sch, step=0, steps=1)  # step 0: the original itself
    d = json.loads(metrics_json(clean))
    assert d["final"]["psnr"] is None  # identical images: infinite PSNR becomes null


@pytest.mark.system
def test_cli_restore_writes_outputs(tmp_path):
    img = sample_path("astronaut")
    out, js, gif = tmp_path / "r.png", tmp_path / "r.json", tmp_path / "r.gif"
    cmd = [sys.executable, "-m", "diffusion_core", "restore", str(img), "--t", "100",
           "--steps", "3", "--size", "64", "--out", str(out), "--json", str(js), "--gif", str(gif),
           "--device", "cpu"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert out.exists() and js.exists() and gif.exists()
    d = json.loads(js.read_text())
    assert d["steps_run"] == 3
    original = _uint8(load_image(img, max_side=64).tensor)
    saved = np.asarray(Image.open(out).convert("RGB"))
    assert saved.shape == original.shape
    assert d["final"]["psnr"] == pytest.approx(_psnr_uint8(saved, original), abs=0.01)
    assert iio.imread(gif, index=None).shape[0] >= 3
