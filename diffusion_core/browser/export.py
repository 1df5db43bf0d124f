"""A conditional model for the browser: one fp32 ONNX file and one small JSON file.

``python -m diffusion_core export-web --model NAME`` (or ``--all``) writes, under
``web/app/models/<name>/``:

* ``model.onnx``: the preconditioned denoiser ``D(x, sigma, label) -> x0_hat`` of
  :class:`~diffusion_core.maths.precond.EDMDenoiser` (EDM's c_skip/c_out/c_in/c_noise inside),
  batch 2 so that one call makes a picture's two guesses (told the label, told nothing),
  fixed size (x: (2, C, S, S) float32, sigma: (2,) float32, label: (2,) int64), opset 18,
  every weight inside the file (no external data). A label of -1, or ``num_classes``, means
  "no label". The file is self-contained: onnxruntime-web runs it with nothing else.
* ``model.json``: what the browser needs besides: the noise levels (EDM/Karras: sigma_min,
  sigma_max, rho, as :func:`~diffusion_core.maths.samplers.edm_sigmas` makes them, and the
  default run's levels for a check), the class names and aliases, the example strip (one tile
  per class in label order, a PNG data URL), the file's checksum, which weights it came from,
  and the largest difference from the torch model that the export measured.

The exported files are committed, so serving the app needs no ONNX package; exporting does
(``onnx``, ``onnxscript`` and ``onnxruntime`` in requirements-dev.txt). Run it again whenever
a model's weights change: the JSON records the weights' checksum and a test compares it with
the model folder.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from diffusion_core.jobs.create import SWEEP
from diffusion_core.maths.precond import SIGMA_DATA, EDMDenoiser
from diffusion_core.maths.samplers import edm_sigmas
from diffusion_core.media.viz import to_display
from diffusion_core.models.labels import class_names, is_conditional
from diffusion_core.models.registry import ModelInfo, find_model, list_models, load_denoiser, sha256_file
from diffusion_core.system.paths import REPO_ROOT
from diffusion_core.units import SIGMA_MAX, SIGMA_MIN

WEB_DIR = REPO_ROOT / "web"
#: the folder the app serves as its browser component (and the static site copies)
APP_DIR = WEB_DIR / "app"
MODELS_DIR = APP_DIR / "models"
ONNX_FILE, JSON_FILE = "model.onnx", "model.json"
FORMAT = 1  # of model.json
BATCH = 2  # one call: a picture's guess told the label and its guess told nothing
OPSET = 18
RHO = 7.0  # edm_sigmas' default
NO_LABEL = -1
#: the steps whose levels model.json lists (a check for the browser's own computation)
CHECK_STEPS = 20
#: the noise levels at which the export compares the ONNX file with the torch model
CHECK_SIGMAS = (80.0, 10.0, 1.0, 0.1, 0.002)
INDEX_FILE = "index.json"  # the exported models, in menu order (models/index.json)
#: the worlds' menu order and what each is first asked for: the Create page's own
#: (app.create.WORLD_ORDER and FIRST_ASK; tests/test_web_site.py keeps them equal)
WORLD_ORDER = ("fashion", "mnist", "doodles")
FIRST_ASK = {"fashion": "Sneaker", "mnist": "7", "doodles": "cat", "digits_cond": "7"}


class ExportError(ValueError):
    """A model that cannot be exported for the browser (unconditional, say), in a sentence
    (the command line prints it as ``error: ...``, exit status 2)."""


class OnnxDenoiser(nn.Module):
    """``D(x, sigma, label)`` as the exporter sees it: the model's own
    :class:`EDMDenoiser` (a copy), except that any label outside 0..k-1 means "no label"
    without the check :class:`~diffusion_core.models.nets.DenoiserUNet` makes in Python (an
    exported graph cannot branch on a tensor's values). Same numbers for every valid label
    and for -1; tests/test_web_export.py compares the exported file with the untouched model."""

    def __init__(self, den: EDMDenoiser):
        super().__init__()
        self.den = copy.deepcopy(den)
        self.den.use_channels_last(False)
        self.den.cpu_bf16 = False
        net = self.den.net
        k = int(net.num_classes)

        def label_embedding(class_labels, n, device):
            labels = class_labels.reshape(-1).long()
            none = torch.full_like(labels, k)
            return net.label_embed(torch.where((labels < 0) | (labels >= k), none, labels))

        net.label_embedding = label_embedding  # this copy only

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.den(x, sigma, label)


@dataclass(frozen=True)
class Exported:
    """What one export wrote."""

    name: str
    onnx: Path
    json: Path
    bytes: int
    max_abs_diff: float | None  # ONNX vs torch on the check inputs (None: no onnxruntime)


def model_dir(name: str, root: Path = MODELS_DIR) -> Path:
    return Path(root) / name


def conditional_models() -> list[ModelInfo]:
    """The shipped models that draw on request (their card lists classes)."""
    return [m for m in list_models(include_user=False)
            if m.source == "shipped" and is_conditional(m.card)]


def model_side(info: ModelInfo) -> int:
    """The side of the pictures a model draws: its card's ``size`` (the worlds: 28), else
    the side it was trained on (``patch``), else 32."""
    card = info.card
    return int(card.get("size") or card.get("patch") or 32)


def check_inputs(channels: int, side: int, num_classes: int) -> Iterator[tuple]:
    """Fixed inputs (x, sigma, label) of batch 2 for comparing the exported file with the
    torch model: a clean-ish picture plus noise at each of :data:`CHECK_SIGMAS`, asking for
    a class and for no label (-1, and ``num_classes``: also "no label")."""
    g = torch.Generator().manual_seed(1234)
    base = torch.rand((BATCH, channels, side, side), generator=g) * 2 - 1
    for j, s in enumerate(CHECK_SIGMAS):
        noise = torch.randn((BATCH, channels, side, side), generator=g)
        x = (base + s * noise).float()
        sigma = torch.full((BATCH,), s, dtype=torch.float32)
        label = torch.tensor([j % max(num_classes, 1), NO_LABEL if j % 2 else num_classes])
        yield x, sigma, label


def torch_reference(den: EDMDenoiser, x, sigma, label) -> np.ndarray:
    """The torch model's x0 guess for the check inputs (a label >= k asks for no label)."""
    k = den.num_classes
    lab = torch.where(label >= k, torch.full_like(label, NO_LABEL), label)
    with torch.no_grad():
        return den(x, sigma, lab).numpy()


def onnx_max_diff(path: Path, den: EDMDenoiser, channels: int, side: int) -> float | None:
    """Largest |ONNX - torch| over the check inputs with onnxruntime for Python, one thread;
    None when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    for x, sigma, label in check_inputs(channels, side, den.num_classes):
        out = sess.run(None, {"x": x.numpy(), "sigma": sigma.numpy(), "label": label.numpy()})[0]
        worst = max(worst, float(np.abs(out - torch_reference(den, x, sigma, label)).max()))
    return worst


def examples_strip(info: ModelInfo, side: int, k: int) -> np.ndarray | None:
    """One picture per class in label order, side by side (gray uint8, side x side*k): the
    model folder's ``examples.png``, or for the digits models the first real digit of each
    class; None when there is none (the browser then shows the class names only)."""
    path = info.path / "examples.png"
    if path.exists():
        strip = np.asarray(Image.open(path).convert("L"))
    elif info.card.get("kind") == "digits" and k == 10:
        from diffusion_core.training.digits import digits_dataset

        images, labels = digits_dataset(side)
        tiles = [to_display(images[int(np.flatnonzero(labels == c)[0])]) for c in range(k)]
        strip = np.concatenate([t[..., 0] if t.ndim == 3 else t for t in tiles], axis=1)
    else:
        return None
    if strip.shape != (side, side * k):
        return None
    return strip.astype(np.uint8)


def png_data_url(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def schedule_json(steps: int = CHECK_STEPS) -> dict:
    """The noise levels as the browser computes them, and one run's levels to check against."""
    return {"kind": "edm", "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "rho": RHO,
            "sigma_data": SIGMA_DATA, "check_steps": steps,
            "check_sigmas": [float(v) for v in edm_sigmas(steps).tolist()]}


def model_json(info: ModelInfo, den: EDMDenoiser, side: int, onnx_path: Path,
               max_diff: float | None) -> dict:
    """The contents of ``model.json`` (see the module docstring)."""
    card = info.card
    names = class_names(card)
    strip = examples_strip(info, side, len(names))
    weights = info.path / "model.safetensors"
    return {
        "format": FORMAT,
        "name": info.name,
        "title": str(card.get("world_title")
                     or ("Small digits" if card.get("kind") == "digits" else info.name)),
        "world": str(card.get("world") or info.name),
        "size": side,
        "channels": den.channels,
        "num_classes": den.num_classes,
        "classes": names,
        "aliases": {str(a).lower(): str(c) for a, c in (card.get("aliases") or {}).items()},
        "class_words": [str(w) for w in card.get("class_words") or []],
        "examples": None if strip is None else {"png": png_data_url(strip), "tile": side},
        "credit": card.get("data_credit"),
        "onnx": {"file": ONNX_FILE, "bytes": onnx_path.stat().st_size,
                 "sha256": sha256_file(onnx_path), "opset": OPSET, "batch": BATCH,
                 "inputs": {"x": ["float32", [BATCH, den.channels, side, side]],
                            "sigma": ["float32", [BATCH]], "label": ["int64", [BATCH]]},
                 "output": "x0", "no_label": NO_LABEL},
        "weights_sha256": str(card.get("sha256") or sha256_file(weights)),
        "schedule": schedule_json(),
        "sweep": list(SWEEP),
        "check": None if max_diff is None else {
            "max_abs_diff": max_diff, "sigmas": list(CHECK_SIGMAS),
            "runtime": "onnxruntime (Python), CPU, 1 thread"},
    }


@contextmanager
def _quiet_exporter():
    """The exporter's progress lines and its warnings about optional packages (torchvision)
    are not for the user."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                              "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def export_onnx(den: EDMDenoiser, side: int, path: Path) -> None:
    """Write ``D(x, sigma, label)`` (batch 2, fixed size) as one self-contained ONNX file."""
    try:
        import onnx  # noqa: F401 - the exporter needs onnx and onnxscript
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ExportError("exporting needs the packages onnx and onnxscript "
                          "(pip install -r requirements-dev.txt)") from e
    wrapped = OnnxDenoiser(den).eval()
    x, sigma, label = next(check_inputs(den.channels, side, den.num_classes))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(wrapped, (x, sigma, label), tmp, input_names=["x", "sigma", "label"],
                              output_names=["x0"], opset_version=OPSET, dynamo=True,
                              external_data=False, verbose=False)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a web server must read it
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_web(name: str, root: Path = MODELS_DIR) -> Exported:
    """Export model ``name`` (a conditional model) for the browser under ``root/<name>/``."""
    info = find_model(name)
    if not is_conditional(info.card):
        raise ExportError(f"model “{info.name}” is unconditional: the browser's Create needs a "
                          "model that draws on request (its card lists classes)")
    den = load_denoiser(info, "cpu")
    if den.num_classes != len(class_names(info.card)):
        raise ExportError(f"model “{info.name}”: its card lists {len(class_names(info.card))} "
                          f"classes but the network takes {den.num_classes}")
    side = model_side(info)
    out = model_dir(info.name, root)
    onnx_path, json_path = out / ONNX_FILE, out / JSON_FILE
    export_onnx(den, side, onnx_path)
    diff = onnx_max_diff(onnx_path, den, den.channels, side)
    data = model_json(info, den, side, onnx_path, diff)
    json_path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    write_index(root)
    return Exported(info.name, onnx_path, json_path, onnx_path.stat().st_size, diff)


def read_export(name: str, root: Path = MODELS_DIR) -> dict | None:
    """A model's ``model.json`` (None when it was not exported, or its ONNX file is missing
    or its JSON is unreadable)."""
    folder = model_dir(name, root)
    try:
        data = json.loads((folder / JSON_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not (folder / ONNX_FILE).is_file():
        return None
    return data


def exported_models(root: Path = MODELS_DIR) -> list[str]:
    """The names of the models exported under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if read_export(p.name, root) is not None)


def ordered(names: list[str]) -> list[str]:
    """Model names in menu order: the worlds first (:data:`WORLD_ORDER`), then the rest."""
    return sorted(names, key=lambda n: (WORLD_ORDER.index(n) if n in WORLD_ORDER
                                        else len(WORLD_ORDER), n))


def index_entry(name: str, data: dict) -> dict:
    """A model's entry in ``models/index.json``: what the page's world menu needs."""
    classes = data.get("classes") or []
    want = FIRST_ASK.get(str(data.get("world") or name))
    return {"name": name, "title": str(data.get("title") or name), "base": f"models/{name}/",
            "what": want if want in classes else (classes[0] if classes else "anything"),
            "credit": data.get("credit")}


def write_index(root: Path = MODELS_DIR, names: list[str] | None = None) -> Path:
    """``root/index.json``: the exported models (or ``names``) in menu order."""
    names = ordered(exported_models(root) if names is None else list(names))
    entries = [index_entry(n, read_export(n, root) or {}) for n in names]
    path = Path(root) / INDEX_FILE
    path.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    return path
