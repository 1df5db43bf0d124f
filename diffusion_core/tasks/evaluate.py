"""Gaussian-denoising benchmark: the shipped model against classical baselines (the digits
check is :mod:`diffusion_core.training.digits_check`).

Protocol (the standard one for CBSD68 / Set12): each image is read as 8-bit, noise
``N(0, (sigma/255)^2)`` is added to the float image without clipping (seeded per image and
sigma), each method's output is clipped to [0, 1] and rounded to 8 bits, and PSNR is
computed on all channels without border crop, then averaged over images. Every method sees
the same noisy images in the same run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from diffusion_core.models.registry import (
    ModelInfo,
    find_model,
    int8_version,
    load_denoiser,
    model_identity,
)
from diffusion_core.system.cpuinfo import cpu_model
from diffusion_core.system.paths import REPO_ROOT
from diffusion_core.units import IMAGE_EXTS, sigma_from_255


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode in ("L", "I;16", "I", "F", "1", "LA"):
            return np.asarray(im.convert("L"), dtype=np.uint8)
        im = im.convert("RGB")
        a = np.asarray(im, dtype=np.uint8)
        if (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all():
            return a[..., 0].copy()
        return a.copy()


def image_seed(name: str, sigma: float) -> int:
    h = hashlib.sha256(f"{name}|{sigma}".encode()).digest()
    return int.from_bytes(h[:4], "little")


def add_noise(clean_u8: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = clean_u8.astype(np.float64) / 255.0
    return x + rng.standard_normal(x.shape) * (sigma / 255.0)


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim_u8(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    kw = {"channel_axis": 2} if a.ndim == 3 else {}
    return float(structural_similarity(a, b, data_range=255, **kw))


def to_u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------- methods


def model_method(name: str = "natural", device: str = "cpu", int8: bool = False) -> Callable:
    """The shipped model as a benchmark method: one call D(noisy, sigma) per picture. On a
    CPU the float model runs channels-last (the app's default, :func:`registry.get_denoiser`);
    ``int8=True``: the 8-bit CPU path (:mod:`diffusion_core.models.quant`), built for each sigma
    before the clock starts."""
    den = load_denoiser(name, device)
    if torch.device(device).type == "cpu":
        den.use_channels_last(True)
    fn = den
    if int8:
        fn = int8_version(den, max_cached=8)

    @torch.inference_mode()
    def run(noisy: np.ndarray, sigma: float) -> np.ndarray:
        x = torch.from_numpy(noisy).float()
        x = x[None] if x.dim() == 2 else x.permute(2, 0, 1)
        y = (x * 2 - 1)[None].to(device)
        out = fn(y, torch.tensor([sigma_from_255(sigma)], device=device))
        out = ((out[0].float().cpu() + 1) / 2).numpy()
        return out[0] if noisy.ndim == 2 else out.transpose(1, 2, 0)

    if int8:
        run.prepare = lambda sigma: fn.body(sigma_from_255(sigma))  # type: ignore[attr-defined]
    return run


def bm3d_method() -> Callable:
    import bm3d

    def run(noisy: np.ndarray, sigma: float) -> np.ndarray:
        if noisy.ndim == 3:
            return bm3d.bm3d_rgb(noisy, sigma / 255.0)
        return bm3d.bm3d(noisy, sigma / 255.0)

    return run


def nlm_method() -> Callable:
    from skimage.restoration import denoise_nl_means

    def run(noisy: np.ndarray, sigma: float) -> np.ndarray:
        s = sigma / 255.0
        kw = {"channel_axis": -1} if noisy.ndim == 3 else {}
        return denoise_nl_means(noisy, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5,
                                patch_distance=6, **kw)

    return run


def identity_method() -> Callable:
    return lambda noisy, sigma: noisy


def list_images(folder: Path, max_images: int | None = None) -> list[Path]:
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTS)
    return paths[:max_images] if max_images else paths


def _method_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    pkg = {"bm3d": "bm3d", "nlm": "scikit-image"}.get(name)
    try:
        return f"{name} {version(pkg)}" if pkg else name
    except PackageNotFoundError:
        return name


class BaselineCache:
    """Scores of the classical baselines, kept between runs in one JSON file.

    A baseline's output depends only on the noisy picture, and the noisy picture only on the
    file's bytes, sigma and the per-image seed; so a key made of those (plus the method and
    its package version) gives back the same numbers without running BM3D again (about
    100 s per megapixel here). Rows taken from the cache say so (``"cached": true``); their
    seconds are those measured when they were computed, on the machine named in the file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.data: dict = {}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except ValueError:
                self.data = {}

    @staticmethod
    def key(image: Path, sigma: float, method: str) -> str:
        digest = hashlib.sha256(Path(image).read_bytes()).hexdigest()[:20]
        return f"{_method_version(method)}|{sigma}|{image_seed(Path(image).name, sigma)}|{digest}"

    def get(self, key: str) -> dict | None:
        return self.data.get(key)

    def put(self, key: str, row: dict) -> None:
        import platform

        self.data[key] = {k: row[k] for k in ("psnr", "ssim", "seconds", "megapixels")}
        self.data[key]["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
        self.data[key]["date"] = time.strftime("%Y-%m-%d")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=0, sort_keys=True))
        os.replace(tmp, self.path)


def evaluate_denoise(
    data: str | Path,
    sigmas=(25,),
    model: str | None = "natural",
    baselines=("bm3d",),
    max_images: int | None = None,
    device: str = "cpu",
    log: Callable[[str], None] = print,
    baseline_cache: str | Path | None = None,
    int8: bool = False,
) -> dict:
    """Run the benchmark; returns {"summary": {sigma: {method: {...}}}, "rows": [...]}.
    ``baseline_cache``: a JSON file that keeps BM3D/NLM scores between runs (see
    :class:`BaselineCache`); the model is always run. ``int8``: also the model's 8-bit CPU
    path, as the method ``model:NAME:int8``."""
    methods: dict[str, Callable] = {"noisy": identity_method()}
    if model:
        methods[f"model:{model}"] = model_method(model, device)
        if int8:
            methods[f"model:{model}:int8"] = model_method(model, device, int8=True)
    for b in baselines:
        b = b.strip()
        if not b:
            continue
        methods[b] = {"bm3d": bm3d_method, "nlm": nlm_method}[b]()
    paths = list_images(Path(data), max_images)
    if not paths:
        raise ValueError(f"No images in {data}")
    cache = BaselineCache(baseline_cache) if baseline_cache else None
    rows = []
    for sigma in sigmas:
        for fn in methods.values():
            if hasattr(fn, "prepare"):  # one-off set-up per sigma, outside the timing
                fn.prepare(float(sigma))
        for p in paths:
            clean = _read(p)
            noisy = add_noise(clean, sigma, image_seed(p.name, sigma))
            mp = clean.shape[0] * clean.shape[1] / 1e6
            for mname, fn in methods.items():
                cacheable = cache is not None and mname in ("bm3d", "nlm")
                key = BaselineCache.key(p, sigma, mname) if cacheable else ""
                hit = cache.get(key) if cacheable else None
                if hit is not None:
                    rows.append({"image": p.name, "sigma": sigma, "method": mname,
                                 "psnr": hit["psnr"], "ssim": hit["ssim"],
                                 "seconds": hit["seconds"], "megapixels": mp, "cached": True})
                    continue
                t0 = time.perf_counter()
                out = to_u8(fn(noisy, float(sigma)))
                dt = time.perf_counter() - t0
                rows.append({"image": p.name, "sigma": sigma, "method": mname,
                             "psnr": psnr_u8(out, clean), "ssim": ssim_u8(out, clean),
                             "seconds": dt, "megapixels": mp})
                if cacheable:
                    cache.put(key, rows[-1])
            last = [r for r in rows if r["image"] == p.name and r["sigma"] == sigma]
            log(f"sigma {sigma} {p.name}: " + ", ".join(
                f"{r['method']} {r['psnr']:.2f}" for r in last))
    summary: dict = {}
    for sigma in sigmas:
        summary[str(sigma)] = {}
        for mname in methods:
            rs = [r for r in rows if r["sigma"] == sigma and r["method"] == mname]
            summary[str(sigma)][mname] = {
                "psnr": round(float(np.mean([r["psnr"] for r in rs])), 3),
                "ssim": round(float(np.mean([r["ssim"] for r in rs])), 4),
                "s_per_mp": round(sum(r["seconds"] for r in rs)
                                  / max(sum(r["megapixels"] for r in rs), 1e-9), 4),
                "images": len(rs),
            }
    n_cached = sum(1 for r in rows if r.get("cached"))
    model_sha = _sha_of(model) if model else None
    return {"data": str(data), "device": device, "torch_threads": torch.get_num_threads(),
            "date": time.strftime("%Y-%m-%d"), "summary": summary, "rows": rows,
            "model": model, "model_sha256": model_sha,
            "baseline_cache": str(baseline_cache) if baseline_cache else None,
            "cached_rows": n_cached, "cpu": cpu_model()}


def markdown_table(result: dict) -> str:
    """The summary as a markdown table; where BM3D ran, each method's speed relative to it
    (BM3D's seconds per megapixel divided by the method's)."""
    lines = [f"Data: `{Path(result['data']).name}` ({result['device']}, "
             f"{result['torch_threads']} threads, {result['date']})", "",
             "| sigma | method | PSNR (dB) | SSIM | s / megapixel | x BM3D speed | images |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for sigma, methods in result["summary"].items():
        ref = methods.get("bm3d", {}).get("s_per_mp")
        for m, v in methods.items():
            ratio = (f"{ref / v['s_per_mp']:.0f}x" if ref and v["s_per_mp"] > 0
                     and m not in ("noisy", "bm3d") else "")
            lines.append(f"| {sigma} | {m} | {v['psnr']:.2f} | {v['ssim']:.4f} | "
                         f"{v['s_per_mp']:.3f} | {ratio} | {v['images']} |")
    return "\n".join(lines)


def write_json(result: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=1))


def _sha_of(model) -> str | None:
    try:
        info = model if isinstance(model, ModelInfo) else find_model(model)
        return model_identity(info)
    except Exception:  # noqa: BLE001 - a record, not a reason to fail the benchmark
        return None


def update_card(model_dir: str | Path, result_files: list[str | Path]) -> dict:
    """Copy the summaries the evaluator wrote into the model's card (``benchmarks``), keyed by
    the result file's path relative to the repository, so the card's figures always come
    from files the evaluator wrote (a test checks they agree)."""
    model_dir = Path(model_dir)
    card_path = model_dir / "card.json"
    card = json.loads(card_path.read_text())
    root = REPO_ROOT
    bench = card.get("benchmarks", {})
    for f in result_files:
        f = Path(f).resolve()
        res = json.loads(f.read_text())
        key = str(f.relative_to(root)) if f.is_relative_to(root) else str(f)
        entry = {"data": Path(res.get("data", "")).name, "date": res.get("date"),
                 "device": res.get("device")}
        if res.get("model_sha256"):
            entry["model_sha256"] = res["model_sha256"]  # which weights were measured
        if "summary" in res:
            entry["summary"] = res["summary"]
        else:  # the digits check
            entry["result"] = {k: res[k] for k in ("mean_confidence", "min_class_share",
                                                   "class_shares", "n", "passes") if k in res}
        bench[key] = entry
    card["benchmarks"] = bench
    tmp = card_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2))
    tmp.replace(card_path)
    return card
