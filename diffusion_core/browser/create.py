"""What the Create page needs to draw in the visitor's browser, and to fall back when it can't.

The browser side is the ``web/app`` folder, mounted as a Streamlit component
(ui/create_browser.py): the page, a Web Worker running onnxruntime-web (WASM, one thread) and
the sampler. This module decides whether browser mode can be offered for a model
(:func:`browser_offer`: the runtime installed by npm, the model's export present and made from
the model's current weights), builds the component's arguments, and reads the one status the
component reports back (:func:`read_status`: ready, unsupported, error or timeout) into what
the page does: draw in the browser, keep checking, or fall back to the server with one line
saying why.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffusion_core.browser.export import APP_DIR, MODELS_DIR, read_export
from diffusion_core.jobs.create import SWEEP
from diffusion_core.maths.samplers import SPECS
from diffusion_core.models.registry import ModelInfo
from diffusion_core.units import SEED_MAX, clamp_float, clamp_int

VENDOR_DIR = APP_DIR / "vendor"
#: onnxruntime-web's files the app serves (web/scripts/vendor.mjs copies them at npm install)
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
#: the samplers the browser runs (web/app/sampler.js)
BROWSER_SAMPLERS = ("ddim", "ddpm", "dpmpp_2m", "heun")
#: the sampler when the page sends none or one the browser lacks (the Create page's default)
BROWSER_DEFAULT_SAMPLER = "dpmpp_2m"
#: seconds the browser may take to download and start the model before the page falls back;
#: the environment variable below changes it (a slow school network; the tests' stalled file)
LOAD_TIMEOUT_S = 45
TIMEOUT_ENV = "DIFFUSION_LAB_BROWSER_TIMEOUT_S"
STATUSES = ("ready", "unsupported", "error", "timeout")

READY_NOTE = ("**Drawing on this computer**: your browser runs the model itself (the server "
              "only sent the files, once), so the guidance knob answers at once.")
CHECKING_NOTE = "Checking whether this computer can draw here…"


def runtime_problem(vendor: Path = VENDOR_DIR) -> str:
    """Why the browser runtime cannot be served ("" when it can): the npm files missing."""
    try:
        manifest = json.loads((vendor / "manifest.json").read_text())
    except (OSError, ValueError):
        manifest = None
    missing = [f for f in RUNTIME_FILES if not (vendor / f).is_file()]
    if manifest is None or missing:
        return ("the in-browser runtime (onnxruntime-web) is not installed here: `make run` "
                "installs it when npm is present")
    return ""


def runtime_files(vendor: Path = VENDOR_DIR) -> list[Path]:
    return [vendor / f for f in RUNTIME_FILES]


def runtime_version(vendor: Path = VENDOR_DIR) -> str | None:
    try:
        return str(json.loads((vendor / "manifest.json").read_text()).get("version"))
    except (OSError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class BrowserOffer:
    """Whether browser mode can be offered for a model, and if not, the one line why."""

    available: bool
    note: str = ""
    args: dict[str, Any] = field(default_factory=dict)


def export_problem(info: ModelInfo, root: Path = MODELS_DIR) -> str:
    """Why a model cannot be drawn in the browser ("" when it can)."""
    if info.source != "shipped":
        return f"“{info.name}” is a model trained here; only the shipped models have a browser copy"
    data = read_export(info.name, root)
    if data is None:
        return (f"“{info.name}” has no browser copy (python -m diffusion_core export-web "
                f"--model {info.name})")
    want = info.card.get("sha256")
    if want and data.get("weights_sha256") != want:
        return (f"the browser copy of “{info.name}” is older than its weights (python -m "
                f"diffusion_core export-web --model {info.name})")
    return ""


def load_timeout_s() -> int:
    """The browser's load time limit in seconds: :data:`TIMEOUT_ENV` when set to a number
    (kept within 1-600), else :data:`LOAD_TIMEOUT_S`."""
    return clamp_int(os.environ.get(TIMEOUT_ENV), 1, 600, LOAD_TIMEOUT_S)


def browser_settings(values: dict[str, Any], limits: dict[str, Any] | None = None) -> dict:
    """The component's starting values and limits, each clamped (raw page values are never
    trusted); ``limits``: steps_min/steps_max/guidance_max/grid_n/sweep_n (the page's)."""
    lim = {"steps_min": 5, "steps_max": 100, "guidance_max": 10.0, "grid_n": 16,
           "sweep_n": 4, **(limits or {})}
    smin, smax = int(lim["steps_min"]), int(lim["steps_max"])
    sampler = str(values.get("sampler"))
    return {
        "what": str(values.get("what") or "anything")[:80],
        "guidance": clamp_float(values.get("guidance"), 0.0, float(lim["guidance_max"]), 3.0),
        "steps": clamp_int(values.get("steps"), smin, smax, min(max(20, smin), smax)),
        "sampler": sampler if sampler in BROWSER_SAMPLERS and sampler in SPECS else BROWSER_DEFAULT_SAMPLER,
        "seed": clamp_int(values.get("seed"), 0, SEED_MAX, 0),
        "steps_min": smin, "steps_max": smax, "guidance_max": float(lim["guidance_max"]),
        "grid_n": int(lim["grid_n"]), "sweep": list(SWEEP), "sweep_n": int(lim["sweep_n"]),
        "seed_max": SEED_MAX, "timeout_s": load_timeout_s(),
    }


def browser_offer(info: ModelInfo, values: dict[str, Any], limits: dict[str, Any] | None = None,
                  root: Path = MODELS_DIR, vendor: Path = VENDOR_DIR) -> BrowserOffer:
    """Browser mode for model ``info`` with the page's current ``values`` (what, guidance,
    steps, sampler, seed): the component's arguments, or the one line why not."""
    problem = runtime_problem(vendor) or export_problem(info, root)
    if problem:
        return BrowserOffer(False, fallback_note(problem))
    data = read_export(info.name, root) or {}
    model = {"name": info.name, "title": str(data.get("title") or info.name),
             "base": f"models/{info.name}/"}
    return BrowserOffer(True, args={"models": [model], "model": info.name,
                                    "settings": browser_settings(values, limits)})


def fallback_note(reason: str) -> str:
    """The one line the page shows when it draws on the server instead."""
    return f"Drawing on the server: {reason}."


_SAFE = re.compile(r"[^\w .,:;()\-+/'’“”%=]")


def _clean(text: Any, limit: int = 160) -> str:
    """A message from the browser (untrusted) as plain words: no markup, one short line."""
    return _SAFE.sub("", " ".join(str(text or "").split()))[:limit].strip()


@dataclass(frozen=True)
class BrowserStatus:
    """What the component said: ``state`` is "checking" (no word yet), "ready" or
    "fallback"; ``note`` the line to show."""

    state: str
    note: str
    ms_per_call: float | None = None
    #: for a fallback: whether it holds for every model (this browser cannot run any)
    every_model: bool = False


def read_status(value: Any, model: str) -> BrowserStatus:
    """The component's value (or None before it spoke) for ``model`` -> what the page does."""
    if value is None:
        return BrowserStatus("checking", CHECKING_NOTE)
    if not isinstance(value, dict) or value.get("status") not in STATUSES:
        return BrowserStatus("fallback", fallback_note("the browser gave an answer this page "
                                                       "does not understand"))
    status = value["status"]
    if value.get("model") not in (None, model):
        # an answer about the world shown before: a browser that drew it is loading this one
        return BrowserStatus("ready", READY_NOTE) if status == "ready" else \
            BrowserStatus("checking", CHECKING_NOTE)
    if status == "ready":
        ms = value.get("ms_per_call")
        ms = float(ms) if isinstance(ms, (int, float)) and ms >= 0 else None
        return BrowserStatus("ready", READY_NOTE, ms)
    why = _clean(value.get("message")) or status
    if status == "timeout":
        why = f"the model took too long to load in this browser ({why})"
    elif status == "unsupported":
        why = f"this browser cannot run it ({why})"
    else:
        why = f"the browser could not start the model ({why})"
    return BrowserStatus("fallback", fallback_note(why), every_model=status == "unsupported")
