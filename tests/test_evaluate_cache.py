"""The denoising benchmark keeps baseline scores between runs only for identical inputs."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from diffusion_core.tasks.evaluate import evaluate_denoise


def _pics(folder, seed=0):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(2):
        a = (rng.random((24, 20, 3)) * 255).astype(np.uint8)
        Image.fromarray(a).save(folder / f"p{i}.png")


def test_baseline_cache_reuses_identical_inputs_only(tmp_path):
    data, cache = tmp_path / "imgs", tmp_path / "cache.json"
    _pics(data)
    first = evaluate_denoise(data, sigmas=(25, 50), model=None, baselines=("nlm",),
                             log=lambda *_: None, baseline_cache=cache)
    assert first["cached_rows"] == 0 and len(json.loads(cache.read_text())) == 4
    again = evaluate_denoise(data, sigmas=(25, 50), model=None, baselines=("nlm",),
                             log=lambda *_: None, baseline_cache=cache)
    assert again["cached_rows"] == 4
    assert again["summary"]["25"]["nlm"]["psnr"] == first["summary"]["25"]["nlm"]["psnr"]
    # the noisy input is recomputed every time (never cached), and gives the same numbers
    assert again["summary"]["50"]["noisy"]["psnr"] == first["summary"]["50"]["noisy"]["psnr"]
    # a changed picture (same name) or another sigma is computed afresh
    a = np.asarray(Image.open(data / "p0.png")).copy()
    a[0, 0] = 255 - a[0, 0]
    Image.fromarray(a).save(data / "p0.png")
    third = evaluate_denoise(data, sigmas=(25, 15), model=None, baselines=("nlm",),
                             log=lambda *_: None, baseline_cache=cache)
    assert third["cached_rows"] == 1  # only p1 at sigma 25
    fresh = evaluate_denoise(data, sigmas=(25, 15), model=None, baselines=("nlm",),
                             log=lambda *_: None)
    assert fresh["cached_rows"] == 0
    for s in ("25", "15"):
        assert abs(third["summary"][s]["nlm"]["psnr"] - fresh["summary"][s]["nlm"]["psnr"]) < 1e-9
