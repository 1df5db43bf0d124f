"""Error per noise level of the photo models against trivial estimates (issue 28).

Usage (from the repository root)::

    .venv/bin/python bench/sigma_error.py                                # natural
    .venv/bin/python bench/sigma_error.py --models natural natural_full

Eight CBSD68 crops (the pictures 20-27 of the folder sorted by file name, counted from 0;
the centre 128x128 of each), one denoiser call per noise level on ``clean + sigma * noise``
(one noise draw, seed 0, the same at every level; not clipped), sigma 0.01 .. 80 in model
units (pictures in [-1, 1]; sigma 25 on the 0-255 scale is 0.196). Per level
(:func:`diffusion_core.tasks.sigma_error.sigma_error_table`): the model's MSE, the MSE of the
mean-colour guess (each clean crop's own per-channel mean), of the best Gaussian blur of the
noisy crop (the best width of a fixed set, per crop), the chroma roughness of the model's
guess and its confetti share (16x16 blocks above the 99th percentile of real photos' blocks:
CBSD68 pictures 20-59, centre 256x256), and issue 28's two acceptance checks: MSE below the
mean-colour guess's, chroma roughness at most 3 x the clean crops'.

Writes ``<out>.md``, ``<out>.json`` and ``<out>.png`` (default ``bench/results/sigma_error``);
prints the tables. Skips (exit 0) when the CBSD68 folder is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffusion_core.media.decode import load_image  # noqa: E402
from diffusion_core.models.registry import (  # noqa: E402
    find_model,
    load_denoiser,
    model_identity,
)
from diffusion_core.system.cpuinfo import cpu_model  # noqa: E402
from diffusion_core.tasks.sigma_error import (  # noqa: E402
    BLUR_WIDTHS,
    box_blur3,
    chroma,
    chroma_roughness,
    confetti_share,
    confetti_threshold,
    sigma_error_table,
)
from diffusion_core.units import sigma_to_255  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "testsets" / "CBSD68"
DEFAULT_OUT = ROOT / "bench" / "results" / "sigma_error"
SIGMAS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
CROPS = (20, 28)  # pictures [20, 28) of the sorted folder
CROP_SIDE = 128
THRESHOLD_PHOTOS = (20, 60)  # pictures [20, 60), for the confetti threshold
THRESHOLD_SIDE = 256
ROUGHNESS_FACTOR = 3.0

#: issue 28's findings table for `natural` (sigma: (MSE of the guess, chroma roughness)), and
#: its mean-colour MSE and clean roughness, to compare with
ISSUE_FINDINGS = {80.0: (0.373, 0.719), 20.0: (0.241, 0.119), 5.0: (0.081, 0.048),
                  2.0: (0.049, 0.070), 1.0: (0.031, 0.060), 0.5: (0.016, 0.010)}
ISSUE_MEAN_COLOUR_AT_80 = 0.256
ISSUE_CLEAN_ROUGHNESS = 0.007


def centre_crop(x: torch.Tensor, side: int) -> torch.Tensor:
    """The centre ``side`` x ``side`` of (C, H, W) (top-left rounded down)."""
    h, w = x.shape[-2:]
    if min(h, w) < side:
        raise ValueError(f"a {h}x{w} picture has no {side}x{side} centre crop")
    top, left = (h - side) // 2, (w - side) // 2
    return x[..., top:top + side, left:left + side]


def pictures(data: Path) -> list[Path]:
    """The folder's PNG files sorted by file name."""
    return sorted(p for p in data.iterdir() if p.suffix.lower() == ".png")


def load_crops(paths: list[Path], side: int) -> torch.Tensor:
    return torch.stack([centre_crop(load_image(p, max_side=None, mode="rgb").tensor, side)
                        for p in paths])


def _fmt_width(w: float) -> str:
    return "inf" if math.isinf(w) else f"{w:.3g}"


def _fmt_255(sigma: float) -> str:
    v = sigma_to_255(sigma)
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def measure(models: list[str], data: Path, seed: int) -> dict:
    files = pictures(data)
    if len(files) < max(CROPS[1], THRESHOLD_PHOTOS[1]):
        raise SystemExit(f"{data} holds {len(files)} PNG files; {THRESHOLD_PHOTOS[1]} needed")
    crop_files = files[CROPS[0]:CROPS[1]]
    clean = load_crops(crop_files, CROP_SIDE)
    thr_photos = load_crops(files[THRESHOLD_PHOTOS[0]:THRESHOLD_PHOTOS[1]], THRESHOLD_SIDE)
    threshold = confetti_threshold(thr_photos)
    clean_rough = chroma_roughness(clean)
    c64, c = clean.double(), chroma(clean)
    res = {
        "crops": [p.name for p in crop_files], "crop_side": CROP_SIDE, "seed": seed,
        "sigmas": list(SIGMAS), "blur_widths": [_fmt_width(w) for w in BLUR_WIDTHS],
        "clean_roughness": float(clean_rough.mean()),
        "clean_roughness_per_picture": clean_rough.tolist(),
        "clean_roughness_pooled": float((c - box_blur3(c)).pow(2).mean()
                                        / c.var(dim=(2, 3), unbiased=False).mean()),
        "roughness_limit": ROUGHNESS_FACTOR * float(clean_rough.mean()),
        "gray_mean_mse": float((c64 - c64.mean(dim=(1, 2, 3), keepdim=True)).pow(2).mean()),
        "confetti_threshold": threshold,
        "confetti_threshold_photos": f"CBSD68 pictures {THRESHOLD_PHOTOS[0]}-"
                                     f"{THRESHOLD_PHOTOS[1] - 1}, centre {THRESHOLD_SIDE} px",
        "confetti_share_threshold_photos": float(confetti_share(thr_photos, threshold).mean()),
        "confetti_share_clean": float(confetti_share(clean, threshold).mean()),
        "models": {},
    }
    for name in models:
        info = find_model(name)
        den = load_denoiser(info, "cpu")
        t0 = time.perf_counter()
        with torch.inference_mode():
            rows = sigma_error_table(den, clean, SIGMAS, torch.Generator().manual_seed(seed),
                                     confetti_threshold=threshold)
        secs = time.perf_counter() - t0
        res["models"][Path(name).name] = {
            "sha256": info.card.get("sha256"), "steps": info.card.get("steps"),
            "identity": model_identity(info),
            "overview_steps": (info.card.get("overview") or {}).get("steps"),
            "seconds": secs,
            "rows": [dict(r.as_dict(), beats_mean_colour=r.beats_mean_colour,
                          smooth_enough=r.smooth_enough(res["clean_roughness"], ROUGHNESS_FACTOR))
                     for r in rows]}
        print(f"{name}: {len(SIGMAS)} calls on {len(crop_files)} crops in {secs:.1f} s", flush=True)
    return res


def model_table(name: str, m: dict, res: dict) -> list[str]:
    rows = m["rows"]
    lines = [
        f"## `{name}`" + (f" ({m['steps']:,} steps, sha256 {m['sha256'][:12]})" if m["sha256"] else "")
        + (f": a cascade; its overview network {m['overview_steps']:,} steps"
           if m.get("overview_steps") else ""),
        "",
        "| σ | σ (0-255) | model MSE | mean-colour MSE | best-blur MSE (widths, px) | noisy MSE "
        "| chroma roughness | confetti share | MSE < mean colour | roughness ≤ 3 × clean |",
        "|---:|---:|---:|---:|---|---:|---:|---:|:---:|:---:|",
    ]
    for r in rows:
        ws = sorted(set(r["best_blur_widths"]), key=lambda w: math.inf if w == "inf" else w)
        lines.append(
            f"| {r['sigma']:g} | {_fmt_255(r['sigma'])} | {r['mse']:.4g} | "
            f"{r['mean_colour_mse']:.4g} | {r['best_blur_mse']:.4g} "
            f"({', '.join(_fmt_width(math.inf if w == 'inf' else w) for w in ws)}) | "
            f"{r['noisy_mse']:.4g} | {r['roughness']:.3f} | {100 * r['confetti']:.0f} % | "
            f"{'yes' if r['beats_mean_colour'] else '**no**'} | "
            f"{'yes' if r['smooth_enough'] else '**no**'} |")
    n = len(rows)
    a = sum(r["beats_mean_colour"] for r in rows)
    b = sum(r["smooth_enough"] for r in rows)
    both = sum(r["beats_mean_colour"] and r["smooth_enough"] for r in rows)
    lines += ["", f"MSE below the mean-colour guess's at {a} of {n} levels; chroma roughness "
              f"≤ {res['roughness_limit']:.4f} at {b} of {n}; both at {both} of {n}: issue 28's "
              f"acceptance {'holds' if both == n else 'does not hold'}. {n} model calls in "
              f"{m['seconds']:.1f} s.", ""]
    return lines


def findings_table(m: dict) -> list[str]:
    by_sigma = {r["sigma"]: r for r in m["rows"]}
    lines = ["| σ | MSE here | MSE in issue 28 | roughness here | roughness in issue 28 |",
             "|---:|---:|---:|---:|---:|"]
    for s, (mse, rough) in ISSUE_FINDINGS.items():
        r = by_sigma[s]
        lines.append(f"| {s:g} | {r['mse']:.3f} | {mse:.3f} | {r['roughness']:.3f} | {rough:.3f} |")
    return lines


def markdown(res: dict) -> str:
    lines = [
        "# Denoising error per noise level against trivial estimates (issue 28)",
        "",
        f"{res['cpu']}, {res['threads']} thread(s), torch {res['torch']}; {res['seconds']:.0f} s "
        f"in all. Command: `{res['command']}`.",
        "",
        f"Pictures: CBSD68 {', '.join(res['crops'])} (pictures {CROPS[0]}-{CROPS[1] - 1} of the "
        f"folder sorted by file name, from 0), the centre {res['crop_side']}x{res['crop_side']} "
        "of each, in model units ([-1, 1]). One model call per σ on the batch of 8, on "
        f"clean + σ · noise with one standard-normal draw (seed {res['seed']}) at every σ, not "
        "clipped. MSE: per pixel and channel, mean over the crops.",
        "",
        "* **mean-colour MSE**: each clean crop's own per-channel mean as the guess (an oracle: "
        "the crops' variance, the same at every σ). A single mean per crop over all three "
        f"channels would give {res['gray_mean_mse']:.4f}.",
        "* **best-blur MSE**: per crop, the best of a separable Gaussian blur (reflected "
        "borders) of the noisy crop with widths " + ", ".join(res["blur_widths"]) + " px "
        "(0 = the noisy crop, inf = its per-channel mean); also an oracle (picked with the "
        "clean crop in hand). The widths picked are in brackets.",
        "* **chroma roughness**: per crop, the energy of the chroma (Cb, Cr of BT.601 full-range "
        "YCbCr) above a 3x3 box blur (reflected borders) over the chroma's variance; mean over "
        f"the crops. The clean crops: **{res['clean_roughness']:.4f}** (pooled over the crops: "
        f"{res['clean_roughness_pooled']:.4f}), so the limit is 3 × {res['clean_roughness']:.4f} "
        f"= {res['roughness_limit']:.4f}.",
        f"* **confetti share**: the share of 16x16 blocks whose fine-chroma energy is above "
        f"{res['confetti_threshold']:.3g} (the 99th percentile over "
        f"{res['confetti_threshold_photos']}: those photos score "
        f"{100 * res['confetti_share_threshold_photos']:.1f} %, the clean crops "
        f"{100 * res['confetti_share_clean']:.1f} %); mean over the crops.",
        "",
        f"![MSE per noise level]({res['plot']})",
        "",
    ]
    for name, m in res["models"].items():
        lines += model_table(name, m, res)
    if "natural" in res["models"]:
        lines += ["## `natural` beside issue 28's findings table", ""]
        lines += findings_table(res["models"]["natural"])
        lines += ["", f"Issue 28: mean-colour MSE {ISSUE_MEAN_COLOUR_AT_80} (here "
                  f"{res['models']['natural']['rows'][0]['mean_colour_mse']:.3f} per channel, "
                  f"{res['gray_mean_mse']:.3f} with one mean over the channels), clean "
                  f"roughness {ISSUE_CLEAN_ROUGHNESS} (here {res['clean_roughness']:.4f}, pooled "
                  f"{res['clean_roughness_pooled']:.4f}).", ""]
    return "\n".join(lines)


# ---- the plot, drawn with Pillow (plotly's PNG export needs kaleido, not installed) ------------

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (140, 86, 75)]
MEAN_COLOUR = (90, 90, 90)
BLUR_COLOUR = (255, 127, 14)


def _font(size: int):
    from PIL import ImageFont

    for f in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(f, size), True
        except OSError:
            continue
    return ImageFont.load_default(size=size), False  # no Greek letters in it


def _dashed(d, pts, colour, width, dash=9, gap=6):
    """A dashed polyline through ``pts``."""
    on, left = True, dash
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        seg = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while pos < seg:
            step = min(left, seg - pos)
            if on:
                a, b = pos / seg, (pos + step) / seg
                d.line([(x0 + a * (x1 - x0), y0 + a * (y1 - y0)),
                        (x0 + b * (x1 - x0), y0 + b * (y1 - y0))], fill=colour, width=width)
            pos += step
            left -= step
            if left <= 0:
                on = not on
                left = dash if on else gap


def _log_ticks(lo: float, hi: float):
    """(value, is a decade) for the ticks of a log axis from 10**lo to 10**hi: every decade
    and its 2..9 multiples inside the range."""
    for e in range(int(lo), int(hi) + 1):
        for k in range(1, 10):
            v = k * 10.0**e
            if 10**lo <= v <= 10**hi:
                yield v, k == 1


def plot_png(res: dict, path: Path, size=(1000, 640)) -> None:
    from PIL import Image, ImageDraw

    W, H = size
    left, right, top, bottom = 90, 230, 50, 70
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    font, greek = _font(14)
    small, _ = _font(12)
    sig = "σ" if greek else "sigma"

    series = []  # (label, colour, dashed, [(sigma, mse, smooth enough)])
    first = next(iter(res["models"].values()))
    for k, (name, m) in enumerate(res["models"].items()):
        series.append((f"model {name}", COLOURS[k % len(COLOURS)], False,
                       [(r["sigma"], r["mse"], r["smooth_enough"]) for r in m["rows"]]))
    series.append(("mean-colour guess (oracle)", MEAN_COLOUR, True,
                   [(r["sigma"], r["mean_colour_mse"], True) for r in first["rows"]]))
    series.append(("best Gaussian blur (oracle)", BLUR_COLOUR, True,
                   [(r["sigma"], r["best_blur_mse"], True) for r in first["rows"]]))
    ys = [v for s in series for _, v, _ in s[3] if v > 0]
    y_lo, y_hi = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x_lo, x_hi = -2.0, 2.0
    px0, px1, py0, py1 = left, W - right, top, H - bottom

    def X(s):
        return px0 + (math.log10(s) - x_lo) / (x_hi - x_lo) * (px1 - px0)

    def Y(v):
        return py1 - (math.log10(v) - y_lo) / (y_hi - y_lo) * (py1 - py0)

    for v, major in _log_ticks(x_lo, x_hi):  # grid and ticks, decades and their 2..9
        x = X(v)
        d.line([(x, py0), (x, py1)], fill=(225, 225, 225) if major else (243, 243, 243))
        d.line([(x, py1), (x, py1 + (6 if major else 3))], fill="black")
        if major:
            d.text((x, py1 + 9), f"{v:g}", fill="black", font=font, anchor="mt")
    for v, major in _log_ticks(y_lo, y_hi):
        y = Y(v)
        d.line([(px0, y), (px1, y)], fill=(225, 225, 225) if major else (243, 243, 243))
        d.line([(px0 - (6 if major else 3), y), (px0, y)], fill="black")
        if major:
            d.text((px0 - 9, y), f"{v:g}", fill="black", font=font, anchor="rm")
    d.rectangle([px0, py0, px1, py1], outline="black")

    for label, colour, dashed, pts in series:
        xy = [(X(s), Y(v), ok) for s, v, ok in pts if v > 0]
        if dashed:
            _dashed(d, [(x, y) for x, y, _ in xy], colour, 2)
        else:
            d.line([(x, y) for x, y, _ in xy], fill=colour, width=3, joint="curve")
            for x, y, ok in xy:  # hollow: the guess's chroma is too rough there
                d.ellipse([x - 5, y - 5, x + 5, y + 5], fill=colour if ok else "white",
                          outline=colour, width=2)

    n = len(res["crops"])
    d.text(((px0 + px1) / 2, 18), f"Denoising error per noise level: {n} CBSD68 crops "
           f"({res['crop_side']} px), one call per {sig}", fill="black", font=font, anchor="mm")
    d.text(((px0 + px1) / 2, H - 22), f"{sig} (model units, pictures in [-1, 1]; log scale)",
           fill="black", font=font, anchor="mm")
    label = Image.new("RGB", (260, 20), "white")
    ImageDraw.Draw(label).text((130, 10), "MSE (log scale)", fill="black", font=font, anchor="mm")
    img.paste(label.rotate(90, expand=True), (12, int((py0 + py1) / 2 - 130)))

    lx, ly = px1 + 18, py0 + 10  # legend
    for label, colour, dashed, _ in series:
        if dashed:
            _dashed(d, [(lx, ly + 7), (lx + 34, ly + 7)], colour, 2, dash=7, gap=4)
        else:
            d.line([(lx, ly + 7), (lx + 34, ly + 7)], fill=colour, width=3)
            d.ellipse([lx + 13, ly + 3, lx + 21, ly + 11], fill=colour)
        d.text((lx + 42, ly + 7), label, fill="black", font=small, anchor="lm")
        ly += 26
    d.ellipse([lx + 12, ly + 2, lx + 22, ly + 12], fill="white", outline="black", width=2)
    d.text((lx + 42, ly + 7), "hollow: chroma roughness", fill="black", font=small, anchor="lm")
    d.text((lx + 42, ly + 23), f"> 3 {'×' if greek else 'x'} the clean crops'", fill="black",
           font=small, anchor="lm")
    img.save(path, optimize=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["natural"],
                   help="registered model names or folders (default natural)")
    p.add_argument("--data", default=str(DATA), help="CBSD68 folder")
    p.add_argument("--seed", type=int, default=0, help="the noise draw's seed (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output path without extension")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    data = Path(a.data)
    if not data.is_dir():
        print(f"skipped: the CBSD68 folder {data} is not there (it lives in ../shared, which "
              "this checkout does not have)")
        return 0
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = measure(a.models, data, a.seed)
    args = " ".join(argv if argv is not None else sys.argv[1:])
    res.update(seconds=time.perf_counter() - t0, threads=a.threads, torch=torch.__version__,
               cpu=cpu_model(), plot=out.with_suffix(".png").name,
               command=("python bench/sigma_error.py " + args).strip())
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    plot_png(res, out.with_suffix(".png"))
    md = markdown(res)
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
