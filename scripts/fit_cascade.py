"""Fit the photo cascade's mixing weights per noise level (diffusion_core/models/cascade.py)
on training photos, and optionally install the overview network into a model folder.

    python scripts/fit_cascade.py --overview runs/natural_overview \
        [--install models/natural] [--json out.json]

Tuning pictures: the centre 256 x 256 of every 27th photo of ../shared/data/train/CBSD432
(16 photos; never the test sets). At each of 27 noise levels from 0.01 to 80 (log-spaced;
one noise draw, seed 0) both networks guess once, and least squares gives the overview's
shares of the coarse brightness and colour and the detail network's shares of its fine
brightness and colour. Where the detail network adds less than 1 % to the overview alone the
level gets (1, 1, 0, 0), and the detail network is not called there. Either way the guess's chroma
roughness must stay within 2 x the clean crops' (on the 256 px crops and on their 128 px
quarters);
where it does not, b_chroma is lowered (and, if need be, ``a`` raised): see :func:`fit`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffusion_core.maths.precond import EDMDenoiser  # noqa: E402
from diffusion_core.media.photos import read_rgb_uint8  # noqa: E402
from diffusion_core.models.cascade import (  # noqa: E402
    MixTable,
    fit_mix_weights,
    grow,
    mix,
    overview_factor,
    shrink,
)
from diffusion_core.models.registry import ModelInfo, find_model, load_denoiser  # noqa: E402
from diffusion_core.system.paths import SHARED_DATA_DIR  # noqa: E402
from diffusion_core.tasks.sigma_error import chroma_roughness  # noqa: E402
from diffusion_core.training.data import folder_paths  # noqa: E402
from diffusion_core.training.train import export_checkpoint  # noqa: E402

SIGMAS = [float(s) for s in torch.logspace(math.log10(0.01), math.log10(80.0), 27,
                                           dtype=torch.float64)]
GAIN = 0.01
FIELDS = ("a", "a_chroma", "b_luma", "b_chroma")  # the order of cascade.mix's weights
ROUGH = 2.0  # the most chroma roughness allowed, in multiples of the clean crops'


def load_overview(path: Path, scratch: Path) -> tuple[EDMDenoiser, Path, dict]:
    """The overview network from a run folder (its checkpoint's EMA weights, exported into
    ``scratch``) or a model folder: the denoiser, its weights file and its card."""
    if (path / "checkpoint.pt").exists():
        export_checkpoint(path, scratch)
        path = scratch
    info = ModelInfo(path.name, path, "user", json.loads((path / "card.json").read_text()))
    return load_denoiser(info).eval(), path / "model.safetensors", info.card


def tuning_batch(side: int = 256) -> torch.Tensor:
    paths = folder_paths(SHARED_DATA_DIR / "train" / "CBSD432")[::27][:16]
    crops = []
    for p in paths:
        a = torch.from_numpy(read_rgb_uint8(p)).permute(2, 0, 1).float() / 127.5 - 1
        h, w = a.shape[1:]
        y0, x0 = (h - side) // 2, (w - side) // 2
        crops.append(a[:, y0:y0 + side, x0:x0 + side])
    return torch.stack(crops)


def mse(a, b) -> float:
    return float(((a.double() - b.double()) ** 2).mean())


@torch.inference_mode()
def fit(detail, overview, clean: torch.Tensor, size: int = 64) -> tuple[MixTable, list]:
    """Per noise level: the least-squares weights (a, a_chroma, b_luma, b_chroma) on the
    256 px crops, kept only where the mix's chroma roughness stays within ``ROUGH`` x the
    clean crops' both on those crops and on their four 128 px quarters (where k is 2, as in
    bench/sigma_error.py); else b_chroma is lowered (bisection; the others refitted), and if
    that is not enough, a_chroma is picked from a grid (the lowest error within the limit, or
    else the smoothest)."""
    sets = []
    quarters = torch.cat([clean[..., i:i + 128, j:j + 128] for i in (0, 128) for j in (0, 128)])
    for c in (clean, quarters):
        h, w = c.shape[-2:]
        sets.append((c, overview_factor(h, w, size), float(chroma_roughness(c).mean())))
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(clean.shape, generator=g)
    rows, report = [], []
    for s in SIGMAS:
        guesses = []
        for c, k, _ in sets:
            h, w = c.shape[-2:]
            n = noise if c.shape == clean.shape else torch.cat(
                [noise[..., i:i + 128, j:j + 128] for i in (0, 128) for j in (0, 128)])
            y = c + s * n
            d = detail(y, s).float()
            o = grow(overview(shrink(y, k), s / k).float(), k, h, w)
            guesses.append((d, o))
        (d, o), k0 = guesses[0], sets[0][1]

        def rough(wts):
            return max(float(chroma_roughness(mix(wts, dd, oo, kk)).mean()) / cr
                       for (dd, oo), (_, kk, cr) in zip(guesses, sets))

        def refit(**fixed):
            return fit_mix_weights(clean, d, o, k0, fixed={FIELDS.index(n): v
                                                           for n, v in fixed.items()})

        def bisect(make, lo, hi):
            """The largest value in [lo, hi] whose weights keep within the roughness limit
            (which holds at lo)."""
            for _ in range(20):
                mid = (lo + hi) / 2
                if rough(make(mid)) <= ROUGH:
                    lo = mid
                else:
                    hi = mid
            return lo

        fitted = fit_mix_weights(clean, d, o, k0)
        e_d, e_o = mse(d, clean), mse(o, clean)
        cands = [fitted]
        if mse(mix(fitted, d, o, k0), clean) > (1 - GAIN) * e_o:
            cands.insert(0, (1.0, 1.0, 0.0, 0.0))
        weights = next((c for c in cands if rough(c) <= ROUGH), None)
        how = "fit" if weights == fitted else "overview alone"
        if weights is None:
            how = "b_chroma lowered"
            bc = bisect(lambda v: refit(b_chroma=v), 0.0, fitted[3]) \
                if rough(refit(b_chroma=0.0)) <= ROUGH else 0.0
            weights = refit(b_chroma=bc)
            if rough(weights) > ROUGH:
                # b_chroma 0 is not enough: the colour's share between the two networks on a
                # grid, the lowest error within the limit, or else the smoothest
                grid = [refit(b_chroma=0.0, a_chroma=v / 10) for v in range(11)]
                ok = [w for w in grid if rough(w) <= ROUGH]
                if ok:
                    how = "b_chroma 0, a_chroma chosen"
                    weights = min(ok, key=lambda w: mse(mix(w, d, o, k0), clean))
                else:
                    how = "b_chroma 0, the smoothest a_chroma (over the limit)"
                    weights = min(grid, key=rough)
        e_mix = mse(mix(weights, d, o, k0), clean)
        rows.append(weights)
        report.append({"sigma": s, "fit": [round(v, 4) for v in fitted],
                       "used": [round(v, 4) for v in weights], "how": how,
                       "roughness_vs_clean": rough(weights), "mse_mix": e_mix,
                       "mse_detail": e_d, "mse_overview": e_o})
        print(f"sigma {s:8.4f}  fit {tuple(round(v, 3) for v in fitted)}  used "
              f"{tuple(round(v, 3) for v in weights)} ({how}; roughness {rough(weights):.2f} x "
              f"clean)  mse mix {e_mix:.5f} detail {e_d:.5f} overview {e_o:.5f}", flush=True)
    a, ac, bl, bc = (tuple(c) for c in zip(*rows))
    table = MixTable(tuple(math.log(s) for s in SIGMAS), a, bl, bc, ac)
    return table, report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--overview", required=True,
                    help="run folder (its checkpoint) or model folder of the overview network")
    ap.add_argument("--detail", default="natural",
                    help="model (name or folder) whose patch network is the detail network")
    ap.add_argument("--install", default=None, help="model folder to put the cascade in")
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    den = load_denoiser(find_model(args.detail))
    detail = getattr(den, "detail", den)  # a folder already holding a cascade: its patch network
    with tempfile.TemporaryDirectory() as scratch:
        overview, weights, ov_card = load_overview(Path(args.overview), Path(scratch))
        note = {k: ov_card[k] for k in ("steps", "wall_time_s", "net", "parameters", "data",
                                        "config") if k in ov_card}
        table, report = fit(detail, overview, tuning_batch())
        out = {"mix": table.to_dict(), "report": report, "overview": note,
               "seconds": round(time.time() - t0, 1)}
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        if not args.install:
            return 0
        dest = Path(args.install)
        shutil.copyfile(weights, dest / "overview.safetensors")
        card_path = dest / "card.json"
        card = json.loads(card_path.read_text())
        card["overview"] = {
            "file": "overview.safetensors",
            "sha256": hashlib.sha256((dest / "overview.safetensors").read_bytes()).hexdigest(),
            "size": 64, "mix": table.to_dict(), **note,
            "fit": "scripts/fit_cascade.py: 16 CBSD432 photos, centre 256 px, 27 noise levels",
        }
        card_path.write_text(json.dumps(card, indent=2))
        print("installed into", dest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
