"""What every command shares: saving a picture, a progress line, and turning the errors a user
can cause into one line and an exit status."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Callable, TextIO

import torch

from diffusion_core.maths.samplers import StepCallback, StepInfo
from diffusion_core.media.convert import to_pil
from diffusion_core.media.decode import ImageLoadError
from diffusion_core.media.masks import MaskError
from diffusion_core.models.registry import ModelLoadError

#: errors that come from what the user gave (a bad picture, model, mask or number): printed as
#: ``error: ...`` with exit status 2 instead of a traceback
USER_ERRORS = (ImageLoadError, ModelLoadError, MaskError, ValueError)


def add_paths(p, *options: tuple[str, str | None, str], required: bool = False) -> None:
    """Add file-path options to a parser, each given as ``(flag, default, help)``."""
    for flag, default, text in options:
        if required:
            p.add_argument(flag, required=True, help=text)
        else:
            p.add_argument(flag, default=default, help=text)


def add_numbers(p, *options: tuple[str, type, float | int, str]) -> None:
    """Add numeric options to a parser, each given as ``(flag, type, default, help)``."""
    for flag, typ, default, text in options:
        p.add_argument(flag, type=typ, default=default, help=text)


def save_png(t: torch.Tensor, path) -> None:
    """Write a (C, H, W) picture in [-1, 1] as PNG (clipped), creating the folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    to_pil(t.clamp(-1, 1)).save(path)


def fmt_db(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f} dB"


def step_progress(what: str, stream: TextIO | None = None,
                  force: bool = False) -> StepCallback | None:
    """A callback that keeps one line ``what: step i/n (noise sigma)`` up to date on ``stream``
    (stderr), or None when the stream is not a terminal (logs and pipes stay clean) unless
    ``force``. It ends the line after the last step."""
    out = sys.stderr if stream is None else stream
    if not force and not (hasattr(out, "isatty") and out.isatty()):
        return None

    def tell(info: StepInfo) -> None:
        noise = f" (noise {info.sigma:.3g})" if info.sigma > 0 else ""
        end = "\n" if info.i + 1 >= info.n else ""
        out.write(f"\r{what}: step {info.i + 1}/{info.n}{noise}   {end}")
        out.flush()

    return tell


def run_guarded(body: Callable[[], int]) -> int:
    """Run a command: user errors become ``error: ...`` and exit status 2, Ctrl-C status 130."""
    try:
        return body()
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
