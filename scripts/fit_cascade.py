"""Fit the photo cascade's mixing weights per noise level (diffusion_core/models/cascade.py)
on training photos, and optionally install the overview network into a model folder.

    python scripts/fit_cascade.py --overview runs/natural_overview \
        [--install models/natural] [--json out.json]

Tuning pictures: the centre 256 x 256 of every 27th photo of ../shared/data/train/CBSD432
(16 photos; never the test sets). At each of 27 noise levels from 0.01 to 80 (log-spaced;
one noise draw, seed 0) both networks guess once, and least squares gives the overview's
share ``a`` of the coarse content and the detail network's shares of its fine luma and
chroma. Where the detail network adds less than 1 % to the overview alone the level gets
(1, 0, 0), and the detail network is not called there. Either way the guess's chroma
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
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffusion_core.maths.precond import EDMDenoiser  # noqa: E402
from diffusion_core.media.photos import read_rgb_uint8  # noqa: E402
from diffusion_core.models.cascade import (  # noqa: E402
    MixTable,
    coarse,
    fit_mix_weights,
    grow,
    luma_part,
    overview_factor,
    shrink,
)
from diffusion_core.models.nets import build_network  # noqa: E402
from diffusion_core.models.registry import _load_weights, find_model  # noqa: E402
from diffusion_core.system.paths import SHARED_DATA_DIR  # noqa: E402
from diffusion_core.tasks.sigma_error import chroma_roughness  # noqa: E402
from diffusion_core.training.data import folder_paths  # noqa: E402

SIGMAS = [float(s) for s in torch.logspace(math.log10(0.01), math.log10(80.0), 27,
                                           dtype=torch.float64)]
GAIN = 0.01
ROUGH = 2.0  # the most chroma roughness allowed, in multiples of the clean crops'


def load_overview(path: Path) -> tuple[EDMDenoiser, dict]:
    """The overview network from a run folder (its checkpoint's EMA weights) or a
    safetensors file; and a note of where it came from."""
    if path.is_dir():
        ck = torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=True)
        cfg = json.loads(ck["config"])
        net = build_network(cfg["net"])
        net.load_state_dict(ck["ema"])
        return EDMDenoiser(net).eval(), {"steps": int(ck["step"]),
                                         "wall_time_s": float(ck.get("elapsed_s", 0))}
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        cfg = json.loads((f.metadata() or {})["config"])
    net = build_network(cfg)
    net.load_state_dict(load_file(str(path)))
    return EDMDenoiser(net).eval(), {}


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


def mix(w, o, d, k):
    a, bl, bc = w
    dc = coarse(d, k)
    fine = d - dc
    fl = luma_part(fine)
    return a * o + (1 - a) * dc + bl * fl + bc * (fine - fl)


def _refit_a_bl(clean, d, o, k, bc) -> tuple[float, float]:
    """Least-squares (a, b_luma) with b_chroma held at ``bc`` (each clipped to [0, 1])."""
    dc = coarse(d, k).double()
    fine = d.double() - dc
    fl = luma_part(fine)
    r = (clean.double() - dc - bc * (fine - fl)).reshape(-1)
    A = torch.stack([(o.double() - dc).reshape(-1), fl.reshape(-1)], 1)
    coef = torch.linalg.solve(A.T @ A + 1e-12 * torch.eye(2, dtype=torch.float64), A.T @ r)
    return tuple(float(min(1.0, max(0.0, c))) for c in coef)


@torch.inference_mode()
def fit(detail, overview, clean: torch.Tensor, size: int = 64) -> tuple[MixTable, list]:
    """Per noise level: the least-squares weights on the 256 px crops, kept only where the
    mix's chroma roughness stays within ``ROUGH`` x the clean crops' both on those crops and
    on their four 128 px quarters (where k is 2, as in bench/sigma_error.py); else b_chroma
    is lowered (bisection; a and b_luma refitted), and if that is not enough, ``a`` raised."""
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
            return max(float(chroma_roughness(mix(wts, oo, dd, kk)).mean()) / cr
                       for (dd, oo), (_, kk, cr) in zip(guesses, sets))

        fitted = fit_mix_weights(clean, d, o, k0)
        e_d, e_o = mse(d, clean), mse(o, clean)
        e_fit = mse(mix(fitted, o, d, k0), clean)
        if e_fit > (1 - GAIN) * e_o:
            cands = [(1.0, 0.0, 0.0), fitted]
        else:
            cands = [fitted]
        weights = next((c for c in cands if rough(c) <= ROUGH), None)
        how = "fit" if weights == fitted else "one network"
        if weights is None:
            how = "b_chroma lowered"
            lo, hi = 0.0, fitted[2]
            if rough((*_refit_a_bl(clean, d, o, k0, 0.0), 0.0)) > ROUGH:
                lo = hi = 0.0
            for _ in range(20):
                mid = (lo + hi) / 2
                if rough((*_refit_a_bl(clean, d, o, k0, mid), mid)) <= ROUGH:
                    lo = mid
                else:
                    hi = mid
            a, bl = _refit_a_bl(clean, d, o, k0, lo)
            weights = (a, bl, lo)
            if rough(weights) > ROUGH:
                how = "b_chroma 0, a raised"
                lo_a, hi_a = a, 1.0
                for _ in range(20):
                    mid = (lo_a + hi_a) / 2
                    if rough((mid, bl, 0.0)) <= ROUGH:
                        hi_a = mid
                    else:
                        lo_a = mid
                weights = (hi_a, bl, 0.0)
        e_mix = mse(mix(weights, o, d, k0), clean)
        rows.append(weights)
        report.append({"sigma": s, "fit": [round(v, 4) for v in fitted],
                       "used": [round(v, 4) for v in weights], "how": how,
                       "roughness_vs_clean": rough(weights), "mse_mix": e_mix,
                       "mse_detail": e_d, "mse_overview": e_o})
        print(f"sigma {s:8.4f}  fit {tuple(round(v, 3) for v in fitted)}  used "
              f"{tuple(round(v, 3) for v in weights)} ({how}; roughness {rough(weights):.2f} x "
              f"clean)  mse mix {e_mix:.5f} detail {e_d:.5f} overview {e_o:.5f}", flush=True)
    table = MixTable(tuple(math.log(s) for s in SIGMAS), *(tuple(c) for c in zip(*rows)))
    return table, report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--overview", required=True, help="run folder or safetensors file")
    ap.add_argument("--detail", default="models/natural/model.safetensors")
    ap.add_argument("--install", default=None, help="model folder to put the cascade in")
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    info = find_model(str(Path(args.detail).parent))
    detail = _load_weights(info, Path(args.detail).name, None, False, None).eval()
    overview, note = load_overview(Path(args.overview))
    table, report = fit(detail, overview, tuning_batch())
    out = {"mix": table.to_dict(), "report": report, "overview": note,
           "seconds": round(time.time() - t0, 1)}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    if args.install:
        dest = Path(args.install)
        if Path(args.overview).is_dir():
            from diffusion_core.training.train import export_checkpoint

            export_checkpoint(Path(args.overview), Path("/tmp/overview_export"))
            src = Path("/tmp/overview_export/model.safetensors")
        else:
            src = Path(args.overview)
        shutil.copyfile(src, dest / "overview.safetensors")
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
