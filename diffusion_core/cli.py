"""Command line: ``python -m diffusion_core <command> ...``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _add_train(sub):
    p = sub.add_parser("train", help="train a denoiser from a config file")
    p.add_argument("--config", required=True)
    p.add_argument("--out", default=None, help="output directory (default runs/<name>)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", default=None, help="start from these safetensors weights")
    for name, typ in [("steps", int), ("batch", int), ("patch", int), ("lr", float),
                      ("ema_decay", float), ("seed", int), ("threads", int),
                      ("ckpt_every", int), ("eval_every", int), ("sample_every", int),
                      ("lr_decay_start", int)]:
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    p.add_argument("--data", nargs="+", default=None,
                   help="sources: deadleaves bundled train400 folder:PATH (name@weight)")
    p.add_argument("--device", default=None)
    p.add_argument("--amp", default=None, choices=["auto", "bf16", "fp16", "off"])


def cmd_train(a) -> int:
    from .train import TrainConfig, train

    cfg = TrainConfig.load(a.config)
    for k in ("steps", "batch", "patch", "lr", "ema_decay", "seed", "threads", "ckpt_every",
              "eval_every", "sample_every", "lr_decay_start", "data", "device", "amp"):
        v = getattr(a, k)
        if v is not None:
            setattr(cfg, k, v)
    out = Path(a.out or f"runs/{cfg.name}")
    summary = train(cfg, out, resume=a.resume, init_weights=a.init, progress=True)
    print(json.dumps({k: v for k, v in summary.items() if k != "last"} | {"last": summary["last"]}))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffusion_core",
                                     description="Diffusion Lab command line")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_train(sub)
    a = parser.parse_args(argv)
    handlers = {"train": cmd_train}
    try:
        return handlers[a.cmd](a)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
