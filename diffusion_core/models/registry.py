"""The model registry: shipped models (``models/<name>/``) and user-trained ones.

Each model is a folder with ``model.safetensors`` (weights; the network config is stored in
the safetensors metadata) and ``card.json`` (what it is, how it was trained, measured
quality, and the sha256 of the weights). Only safetensors are ever loaded: no pickles.

User models live in ``$DIFFUSION_LAB_USER_MODELS`` (default ``~/.diffusion_lab/models``),
outside git. Optional: a folder in diffusers' format (a ``UNet2DModel`` with its scheduler
config) loads as another model when the ``diffusers`` package is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from diffusion_core.maths.precond import EDMDenoiser, cpu_has_fast_bf16
from diffusion_core.models.cascade import CascadeDenoiser, MixTable
from diffusion_core.models.interop import DiffusersLoadError, load_diffusers_denoiser
from diffusion_core.models.nets import build_network
from diffusion_core.models.quant import Int8Denoiser
from diffusion_core.system import counters
from diffusion_core.system.paths import REPO_ROOT, SHIPPED_MODELS_DIR

ROOT = REPO_ROOT
SHIPPED_DIR = SHIPPED_MODELS_DIR
_NAME_RE = re.compile(r"[^A-Za-z0-9_-]+")


class ModelLoadError(RuntimeError):
    """A model could not be loaded; ``str(e)`` is a message for the screen."""


def user_models_dir() -> Path:
    d = os.environ.get("DIFFUSION_LAB_USER_MODELS")
    return Path(d) if d else Path.home() / ".diffusion_lab" / "models"


def sanitize_name(name: str, max_len: int = 40) -> str:
    """A safe folder name from user text: letters, digits, '-' and '_' only."""
    s = _NAME_RE.sub("-", str(name)).strip("-_")[:max_len]
    return s or "model"


@dataclass
class ModelInfo:
    name: str
    path: Path
    source: str  # "shipped", "user" or "diffusers"
    card: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.card.get("kind", "photo"))

    @property
    def channels(self) -> int:
        return int(self.card.get("net", {}).get("in_channels", 3))

    @property
    def label(self) -> str:
        tag = {"shipped": "shipped", "user": "yours", "diffusers": "diffusers"}[self.source]
        return f"{self.name} ({tag})"


def _read_card(folder: Path) -> dict:
    p = folder / "card.json"
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {"error": "card.json is not valid JSON"}


def _is_diffusers_folder(folder: Path) -> bool:
    for cfg in (folder / "config.json", folder / "unet" / "config.json"):
        if cfg.exists():
            try:
                return json.loads(cfg.read_text()).get("_class_name") == "UNet2DModel"
            except (OSError, ValueError):
                return False
    return False


def list_models(include_user: bool = True) -> list[ModelInfo]:
    """All models: shipped first, then the user's, sorted by name."""
    out: list[ModelInfo] = []
    dirs = [(SHIPPED_DIR, "shipped")]
    if include_user:
        dirs.append((user_models_dir(), "user"))
    for base, source in dirs:
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            if (folder / "model.safetensors").exists():
                out.append(ModelInfo(folder.name, folder, source, _read_card(folder)))
            elif _is_diffusers_folder(folder):
                out.append(ModelInfo(folder.name, folder, "diffusers",
                                     {"kind": "photo", "architecture": "diffusers UNet2DModel"}))
    return out


def find_model(name: str) -> ModelInfo:
    for m in list_models():
        if m.name == name or m.label == name:
            return m
    p = Path(name)
    if p.is_dir() and ((p / "model.safetensors").exists() or _is_diffusers_folder(p)):
        src = "diffusers" if _is_diffusers_folder(p) else "user"
        return ModelInfo(p.name, p, src, _read_card(p))
    raise ModelLoadError(f"No model called “{name}”. Available: "
                         + ", ".join(m.name for m in list_models()))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_identity(card: dict, detail_sha: str | None = None,
                  overview_sha: str | None = None) -> str | None:
    """What identifies the weights a card describes, for benchmark records: the sha256 of
    ``model.safetensors``, or for a photo cascade (a card with ``overview``) the sha256 of
    both files' checksums and the mix table together. The checksums default to the card's."""
    sha = detail_sha or card.get("sha256")
    ov = card.get("overview")
    if not ov or not sha:
        return sha
    blob = json.dumps([sha, overview_sha or ov.get("sha256"), ov.get("mix")], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def model_identity(info: ModelInfo) -> str | None:
    """:func:`card_identity` from the files on disk (what a benchmark really measured)."""
    ov = info.card.get("overview")
    ov_sha = sha256_file(info.path / str(ov.get("file", "overview.safetensors"))) if ov else None
    return card_identity(info.card, sha256_file(info.path / "model.safetensors"), ov_sha)


def load_denoiser(info: ModelInfo | str, device: str | torch.device = "cpu",
                  verify: bool = True) -> EDMDenoiser:
    """Load a model's weights (safetensors only) into an ``EDMDenoiser`` in eval mode."""
    if isinstance(info, str):
        info = find_model(info)
    if info.source == "diffusers":
        try:
            den = load_diffusers_denoiser(info.path, device)
        except DiffusersLoadError as e:
            raise ModelLoadError(str(e)) from e
        _count_load(info, device)
        return den
    den = _load_weights(info, "model.safetensors", info.card.get("sha256"), verify,
                        info.card.get("net")).to(device).eval()
    den.requires_grad_(False)
    overview = info.card.get("overview")
    if overview:  # a photo model in two networks (models/cascade.py)
        try:
            table = MixTable.from_dict(overview["mix"])
            size = int(overview.get("size", 64))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelLoadError(f"Model “{info.name}”: its card's overview entry is not "
                                 f"valid ({e}). Other models still work.") from e
        ov = _load_weights(info, str(overview.get("file", "overview.safetensors")),
                           overview.get("sha256"), verify, None).to(device).eval()
        ov.requires_grad_(False)
        den = CascadeDenoiser(den, ov, table, size)
    den.info = info  # type: ignore[attr-defined]
    _count_load(info, device)
    return den


def _load_weights(info: ModelInfo, filename: str, sha256: str | None, verify: bool,
                  fallback_net: dict | None) -> EDMDenoiser:
    """One safetensors file of a model folder as an ``EDMDenoiser`` (checked against its
    sha256 when one is given); any damage becomes a :class:`ModelLoadError`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = info.path / filename
    if not path.exists():
        raise ModelLoadError(f"Model “{info.name}” has no {filename} file.")
    if verify and sha256 and sha256_file(path) != sha256:
        raise ModelLoadError(
            f"Model “{info.name}”: the weights file {filename} does not match the checksum in "
            "its card (it is damaged or was changed). Other models still work.")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        cfg = json.loads(meta["config"]) if "config" in meta else fallback_net
        if not cfg:
            raise ModelLoadError(f"Model “{info.name}” does not say which network it is.")
        net = build_network(cfg)
        net.load_state_dict(load_file(str(path)))
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - any damage in the file becomes one clear message
        raise ModelLoadError(
            f"Model “{info.name}” could not be read ({type(e).__name__}); the file may be "
            "truncated or corrupt. Other models still work.") from e
    return EDMDenoiser(net)


def _count_load(info: ModelInfo, device) -> None:
    """Count reads of weights from disk (see :mod:`diffusion_core.system.counters`)."""
    counters.bump("model_loads")
    counters.bump(f"model_loads:{info.name}@{device}")


#: Most models the cache keeps loaded at once; the least recently used one goes first.
MAX_CACHED_MODELS = 6
_CACHE: OrderedDict[tuple, EDMDenoiser] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def get_denoiser(name: str, device: str = "cpu", channels_last: bool | None = None,
                 cpu_bf16: bool | None = None) -> EDMDenoiser:
    """The model cache of the whole process: every page, job and command shares it.

    One instance per model folder, device, weights-file version (its modification time) and
    speed options. Thread-safe: callers that ask at the same time wait for one read from
    disk. A newer version of a weights file (a model trained again) replaces the older one,
    and at most :data:`MAX_CACHED_MODELS` stay loaded. On a CPU, by default (``None``):
    channels-last memory order (the same outputs up to float rounding, up to 1.4x faster at 1
    megapixel; bench/results/speed.md) and bf16 autocast only where the CPU does bf16 in
    hardware (:func:`cpu_has_fast_bf16`). Pass ``False`` for the plain fp32 layout."""
    info = find_model(name)
    p = info.path / "model.safetensors"
    on_cpu = torch.device(device).type == "cpu"
    if channels_last is None:
        channels_last = on_cpu
    if cpu_bf16 is None:
        cpu_bf16 = on_cpu and cpu_has_fast_bf16()
    key = (str(info.path), str(device), p.stat().st_mtime_ns if p.exists() else 0,
           bool(channels_last), bool(cpu_bf16))
    with _CACHE_LOCK:
        den = _CACHE.get(key)
        if den is not None:
            _CACHE.move_to_end(key)
            return den
        den = load_denoiser(info, device)
        if channels_last:
            den.use_channels_last()
        den = den.use_cpu_bf16(bool(cpu_bf16))
        for old in [k for k in _CACHE if k[:2] == key[:2] and k[2] != key[2]]:
            del _CACHE[old]  # an older version of the same weights file
        _CACHE[key] = den
        while len(_CACHE) > MAX_CACHED_MODELS:
            _CACHE.popitem(last=False)
        return den


def cached_models() -> list[tuple]:
    """The cache's keys, least recently used first: (folder, device, file version,
    channels_last, cpu_bf16)."""
    with _CACHE_LOCK:
        return list(_CACHE)


_INT8_CACHE: dict[tuple, object] = {}


def int8_version(den, max_cached: int = 4):
    """The 8-bit CPU path of a loaded denoiser: :class:`quant.Int8Denoiser` around it, or for
    a photo cascade around its detail network (the small overview network stays in float).
    ``.body(sigma)`` builds the 8-bit network for a noise level ahead of time."""
    if isinstance(den, CascadeDenoiser):
        out = den.with_detail(Int8Denoiser(den.detail, max_cached=max_cached))
        out.body = out.detail.body  # type: ignore[attr-defined]
        return out
    return Int8Denoiser(den, max_cached=max_cached)


def get_int8_denoiser(name: str):
    """Process-wide cached 8-bit CPU denoiser of a model (:class:`quant.Int8Denoiser`, which
    itself caches one quantized network per noise level). Raises ``ValueError`` with a
    sentence for the user where the model or the CPU cannot do it. Kept while its float
    model stays in the model cache."""
    den = get_denoiser(name, "cpu")
    key = (name, id(den))
    with _CACHE_LOCK:
        loaded = {id(d) for d in _CACHE.values()}
        for old in [k for k in _INT8_CACHE if k[1] not in loaded]:
            del _INT8_CACHE[old]  # its float model left the cache (evicted or a newer version)
        if key not in _INT8_CACHE:
            _INT8_CACHE[key] = int8_version(den)
        return _INT8_CACHE[key]
