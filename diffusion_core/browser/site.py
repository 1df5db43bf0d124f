"""The static site a teacher can hand out: ``python -m diffusion_core export-site DIR``.

The folder holds the Create experience running in the visitor's browser (the same page,
worker and sampler as the app's browser mode: worlds, class pictures, guidance, steps, seed,
the live grid, one picture opened up and the guidance sweep), the forward-process scrubber on
the built-in sample pictures, and a short text. Nothing runs on a server: ``python -m
http.server -d DIR`` or any static host (GitHub Pages) serves it as it is.

Layout of DIR::

    index.html, scrubber.html, *.js, style.css   (from web/app)
    vendor/                     onnxruntime-web's WASM build (installed by npm, see web/)
    models/index.json           the worlds, and models/<name>/model.onnx + model.json
    samples/index.json          the sample pictures (PNG, at most 256 px), one noise draw
                                (8-bit PNG over [-4, 4]) and each schedule's alpha-bar table
    .diffusion-lab-site         marks a folder this command wrote (it replaces only such)
    .nojekyll                   GitHub Pages: serve the files as they are
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from diffusion_core.browser.create import runtime_files, runtime_problem
from diffusion_core.browser.export import (
    APP_DIR,
    JSON_FILE,
    MODELS_DIR,
    ONNX_FILE,
    exported_models,
    read_export,
    write_index,
)
from diffusion_core.maths.forward import draw_noise
from diffusion_core.maths.schedules import SCHEDULES, T_DEFAULT, make_schedule
from diffusion_core.media.convert import to_uint8
from diffusion_core.media.samples import SAMPLES, list_samples, load_sample

MARKER = ".diffusion-lab-site"
#: the web/app files the site serves, and the name each gets there
PAGES = {"site.html": "index.html", "scrubber.html": "scrubber.html", "create.js": "create.js",
         "worker.js": "worker.js", "sampler.js": "sampler.js", "scrubber.js": "scrubber.js",
         "style.css": "style.css"}
SAMPLE_SIDE = 256  # the sample pictures' longest side in the site
NOISE_RANGE = 4.0  # the noise PNG holds [-4, 4] in 8 bits, as the app's scrubber sends it
NOISE_SEED = 0


@dataclass(frozen=True)
class Site:
    root: Path
    files: int
    bytes: int
    models: list[str]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _check_dest(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"{dest} is a file, not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MARKER).exists():
        raise ValueError(f"{dest} is not empty and was not written by export-site: pick an "
                         "empty or new folder")


def write_samples(folder: Path) -> int:
    """The scrubber's data: each built-in sample picture, one noise draw and the schedules'
    alpha-bar tables (samples/index.json). Returns the number of pictures."""
    folder.mkdir(parents=True, exist_ok=True)
    noise = draw_noise((3, SAMPLE_SIDE, SAMPLE_SIDE), NOISE_SEED)
    q = to_uint8((noise / NOISE_RANGE).clamp(-1, 1))  # [-4, 4] -> 0..255, HxWx3
    (folder / "noise.png").write_bytes(_png(q))
    pictures = []
    for name in list_samples():
        img = load_sample(name, max_side=SAMPLE_SIDE).tensor
        arr = to_uint8(img.clamp(-1, 1))
        (folder / f"{name}.png").write_bytes(_png(arr))
        s = SAMPLES[name]
        pictures.append({"name": name, "title": s.title, "description": s.description,
                         "file": f"{name}.png", "width": int(img.shape[-1]),
                         "height": int(img.shape[-2]), "gray": int(img.shape[0]) == 1})
    tables = {n: [float(f"{v:.9g}") for v in make_schedule(n, T_DEFAULT).alpha_bar]
              for n in SCHEDULES}
    index = {"T": T_DEFAULT, "schedules": tables, "default_schedule": "linear",
             "noise": {"file": "noise.png", "range": NOISE_RANGE, "side": SAMPLE_SIDE,
                       "seed": NOISE_SEED},
             "samples": pictures}
    (folder / "index.json").write_text(json.dumps(index) + "\n")
    return len(pictures)


def export_site(dest: Path | str, models: list[str] | None = None,
                models_root: Path = MODELS_DIR) -> Site:
    """Write the static site into ``dest`` (see the module docstring); ValueError with a
    sentence when the browser runtime or a model's export is missing, or ``dest`` holds
    other files."""
    dest = Path(dest)
    problem = runtime_problem()
    if problem:
        raise ValueError(problem)
    names = list(models) if models else exported_models(models_root)
    if not names:
        raise ValueError("no model is exported for the browser: run python -m diffusion_core "
                         "export-web --all first")
    for name in names:
        if read_export(name, models_root) is None:
            raise ValueError(f"model “{name}” is not exported for the browser: run python -m "
                             f"diffusion_core export-web --model {name}")
    _check_dest(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MARKER).write_text("written by python -m diffusion_core export-site\n")
    (dest / ".nojekyll").write_text("")
    for sub in ("vendor", "models", "samples"):
        shutil.rmtree(dest / sub, ignore_errors=True)
    for src, name in PAGES.items():
        shutil.copyfile(APP_DIR / src, dest / name)
    (dest / "vendor").mkdir()
    for path in runtime_files():
        shutil.copyfile(path, dest / "vendor" / path.name)
    for name in names:
        out = dest / "models" / name
        out.mkdir(parents=True)
        for f in (ONNX_FILE, JSON_FILE):
            shutil.copyfile(Path(models_root) / name / f, out / f)
    write_index(dest / "models", names)
    write_samples(dest / "samples")
    files = [p for p in dest.rglob("*") if p.is_file()]
    return Site(dest, len(files), sum(p.stat().st_size for p in files), names)


def site_size(root: Path) -> int:
    """Bytes of every file under ``root``."""
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
