"""Fit the photo cascade's mixing weights per noise level (diffusion_core/models/cascade.py)
on training photos, and optionally install the overview network into a model folder.

    python scripts/fit_cascade.py --overview runs/natural_overview \
        [--install models/natural] [--json out.json]

Tuning pictures: the centre 256 x 256 of every 27th photo of ../shared/data/train/CBSD432
(16 photos; never the test sets). At each of 27 noise levels from 0.01 to 80 (log-spaced;
one noise draw, seed 0) both networks guess once, and least squares gives the overview's
share ``a`` of the coarse content and the detail network's shares of its fine luma and
chroma. Where the mix lowers the error by less than 1 % against the detail network alone
the level gets (0, 1, 1), and the overview is not called there; where the detail network
adds less than 1 % to the overview alone, (1, 0, 0).
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
from diffusion_core.training.data import folder_paths  # noqa: E402

SIGMAS = [float(s) for s in torch.logspace(math.log10(0.01), math.log10(80.0), 27,
                                           dtype=torch.float64)]
GAIN = 0.01


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


@torch.inference_mode()
def fit(detail, overview, clean: torch.Tensor, size: int = 64) -> tuple[MixTable, list]:
    h, w = clean.shape[-2:]
    k = overview_factor(h, w, size)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(clean.shape, generator=g)
    rows, report = [], []
    for s in SIGMAS:
        y = clean + s * noise
        d = detail(y, s).float()
        o = grow(overview(shrink(y, k), s / k).float(), k, h, w)
        a, bl, bc = fit_mix_weights(clean, d, o, k)
        dc = coarse(d, k)
        fine = d - dc
        fl = luma_part(fine)
        mix = a * o + (1 - a) * dc + bl * fl + bc * (fine - fl)
        e_mix, e_d, e_o = mse(mix, clean), mse(d, clean), mse(o, clean)
        weights = (a, bl, bc)
        if e_mix > (1 - GAIN) * e_d:
            weights = (0.0, 1.0, 1.0)
        elif e_mix > (1 - GAIN) * e_o:
            weights = (1.0, 0.0, 0.0)
        rows.append(weights)
        report.append({"sigma": s, "fit": [round(v, 4) for v in (a, bl, bc)],
                       "used": [round(v, 4) for v in weights], "mse_mix": e_mix,
                       "mse_detail": e_d, "mse_overview": e_o})
        print(f"sigma {s:8.4f}  a {a:.3f} b_luma {bl:.3f} b_chroma {bc:.3f}  used "
              f"{weights}  mse mix {e_mix:.5f} detail {e_d:.5f} overview {e_o:.5f}", flush=True)
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
