"""The browser commands: ``python -m diffusion_core export-web ...`` and ``... export-site DIR``.

``export-web`` writes a conditional model as one ONNX file and one JSON file for the Create
page's browser mode (:mod:`diffusion_core.browser.export`); ``export-site`` writes the static
site a teacher can hand out (:mod:`diffusion_core.browser.site`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from diffusion_core.browser.export import MODELS_DIR, conditional_models, export_web
from diffusion_core.browser.site import export_site

EXPORT_WEB_DESCRIPTION = (
    "Export a conditional model for the browser: one self-contained fp32 ONNX file of the "
    "preconditioned denoiser D(x, sigma, label), batch 2 (the guess told the label and the "
    "guess told nothing in one call), and a JSON file with the noise levels, the class names "
    "and the example strip, under web/app/models/NAME/. Needs onnx, onnxscript and "
    "onnxruntime (requirements-dev.txt); run it again whenever the model's weights change.")

EXPORT_SITE_DESCRIPTION = (
    "Write a static site to hand out: the Create experience (worlds, class pictures, guidance, "
    "steps, seed, the live grid) running in the visitor's browser, and the forward-process "
    "scrubber on the built-in sample pictures. Serve the folder with any static host, e.g. "
    "`python -m http.server -d DIR` or GitHub Pages; no server code runs. Needs the browser "
    "runtime installed by npm (make run / make site do it) and the exported models.")


def add_export_web_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", default=None, metavar="NAME",
                   help="a conditional model to export (repeat for several)")
    p.add_argument("--all", action="store_true",
                   help="export every shipped conditional model")
    p.add_argument("--out", type=Path, default=MODELS_DIR,
                   help="folder that gets one sub-folder per model (default web/app/models)")


def run_export_web(a) -> int:
    names = list(a.model or [])
    if a.all:
        names += [m.name for m in conditional_models() if m.name not in names]
    if not names:
        raise ValueError("name a model with --model NAME, or use --all")
    for name in names:
        res = export_web(name, a.out)
        diff = ("not checked (onnxruntime is not installed)" if res.max_abs_diff is None
                else f"max |ONNX - torch| = {res.max_abs_diff:.2e}")
        print(f"{res.name}: wrote {res.onnx} ({res.bytes / 1e6:.2f} MB) and "
              f"{res.json.name}; {diff}")
    return 0


def add_export_site_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="the folder to write (created; its old contents of "
                                          "the same names are replaced)")
    p.add_argument("--model", action="append", default=None, metavar="NAME",
                   help="a world to include (repeat; default: every exported model)")


def run_export_site(a) -> int:
    res = export_site(a.dir, a.model)
    print(f"wrote {res.root}: {res.files} files, {res.bytes / 1e6:.1f} MB "
          f"(worlds: {', '.join(res.models)})")
    print(f"serve it with: python -m http.server -d {res.root} 8000   "
          "(then open http://localhost:8000/)")
    return 0
