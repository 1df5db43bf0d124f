"""Exports of a restore run: animated GIF / MP4 of "noising then restoring", a PNG strip of
stages, the restored PNG and the metrics as JSON. No streamlit here.

Frames are (C,H,W) tensors in [-1, 1] (C = 1 or 3) or uint8 arrays (H,W) / (H,W,3).
Large frames are shrunk cheaply (area average) so previews and animations stay small;
tiny ones (the 32x32 digits) are enlarged with nearest-neighbour so the pixels stay sharp.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from diffusion_core.maths.forward import x_at_step
from diffusion_core.media.convert import to_uint8
from diffusion_core.media.viz import png_bytes, strip_image
from diffusion_core.units import from_255

PREVIEW_MAX_SIDE = 384
SMALL_SIDE = 96  # frames smaller than this (the 32 px digits) are enlarged in animations ...
ENLARGED_SIDE = 256  # ... to this (nearest neighbour), so that they can be watched
GIF_MS = 110  # per frame
HOLD_MS = 900  # the first (clean) and last (restored) frames stay a little longer


# --------------------------------------------------------------------------- frame sizing


def fit_size(h: int, w: int, max_side: int | None = PREVIEW_MAX_SIDE,
             min_side: int | None = None) -> tuple[int, int]:
    """(h, w) scaled to fit ``max_side`` (never enlarged by it) or enlarged by an integer factor
    until the longest side reaches ``min_side``."""
    longest = max(h, w)
    if max_side and longest > max_side:
        s = max_side / longest
        return max(1, round(h * s)), max(1, round(w * s))
    if min_side and longest < min_side:
        k = max(1, min_side // longest)
        return h * k, w * k
    return h, w


def preview(x: torch.Tensor | np.ndarray, max_side: int | None = PREVIEW_MAX_SIDE,
            min_side: int | None = None) -> np.ndarray:
    """A frame as an RGB uint8 (H, W, 3) array, shrunk (area) or enlarged (nearest) to fit."""
    if isinstance(x, np.ndarray):
        a = x if x.ndim == 3 else x[..., None]
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        h, w = a.shape[:2]
        th, tw = fit_size(h, w, max_side, min_side)
        if (th, tw) == (h, w):
            return np.ascontiguousarray(a)
        t = from_255(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1))
        return preview(t, max_side, min_side)
    t = x.detach().float().cpu()
    if t.ndim == 4:
        t = t[0]
    if t.ndim == 2:
        t = t[None]
    h, w = t.shape[-2:]
    th, tw = fit_size(h, w, max_side, min_side)
    if (th, tw) != (h, w):
        mode = "area" if th < h else "nearest"
        t = F.interpolate(t[None], size=(th, tw), mode=mode)[0]
    a = to_uint8(t.clamp(-1, 1))
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return a


def _even(a: np.ndarray) -> np.ndarray:
    """Pad an (H, W, 3) frame by repeating its last row / column up to even sizes (H.264)."""
    h, w = a.shape[:2]
    ph, pw = h % 2, w % 2
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return a


def _frames_rgb(frames: Sequence, max_side: int | None, min_side: int | None) -> list[np.ndarray]:
    if not len(frames):
        raise ValueError("No frames to write.")
    arrs = [preview(f, max_side, min_side) for f in frames]
    h, w = arrs[0].shape[:2]
    for a in arrs:
        if a.shape[:2] != (h, w):
            raise ValueError("All frames must have the same size.")
    return arrs


def _write(data: bytes, path: str | os.PathLike | None) -> bytes:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


# --------------------------------------------------------------------------- GIF / MP4


def frames_gif(frames: Sequence, path: str | os.PathLike | None = None, *,
               frame_ms: int = GIF_MS, hold_ms: int = HOLD_MS,
               max_side: int | None = PREVIEW_MAX_SIDE, min_side: int | None = None,
               loop: int = 0) -> bytes:
    """An animated GIF of the frames (the first and last held ``hold_ms``); writes ``path``
    when given and returns the bytes either way."""
    arrs = _frames_rgb(frames, max_side, min_side)
    ims = [Image.fromarray(a) for a in arrs]
    durations = [int(frame_ms)] * len(ims)
    if len(ims) > 1:
        durations[0] = durations[-1] = max(int(hold_ms), int(frame_ms))
    buf = io.BytesIO()
    # optimize=False keeps every frame (Pillow would otherwise merge identical ones)
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=durations,
                loop=int(loop), optimize=False, disposal=1)
    return _write(buf.getvalue(), path)


def frames_mp4(frames: Sequence, path: str | os.PathLike | None = None, *, fps: float = 10.0,
               hold_s: float = HOLD_MS / 1000, max_side: int | None = PREVIEW_MAX_SIDE,
               min_side: int | None = None, quality: int = 23) -> bytes:
    """An H.264 MP4 (yuv420p, plays in browsers) of the frames, made with the ffmpeg binary
    that ships in imageio-ffmpeg (no network). Odd sizes are padded to even ones; the first
    and last frames are repeated to last about ``hold_s`` seconds."""
    import imageio_ffmpeg

    arrs = [_even(a) for a in _frames_rgb(frames, max_side, min_side)]
    h, w = arrs[0].shape[:2]
    hold = max(1, int(round(hold_s * fps))) if len(arrs) > 1 else 1
    seq = [arrs[0]] * hold + arrs[1:-1] + [arrs[-1]] * hold if len(arrs) > 1 else arrs
    with tempfile.TemporaryDirectory(prefix="dlab_mp4_") as tmp:
        out = Path(tmp) / "out.mp4"
        writer = imageio_ffmpeg.write_frames(
            str(out), (w, h), pix_fmt_in="rgb24", pix_fmt_out="yuv420p", fps=float(fps),
            codec="libx264", macro_block_size=1, quality=None,
            output_params=["-crf", str(int(quality)), "-preset", "veryfast",
                           "-movflags", "+faststart"],
            ffmpeg_log_level="error")
        writer.send(None)  # start ffmpeg
        try:
            for a in seq:
                writer.send(np.ascontiguousarray(a))
        finally:
            writer.close()
        data = out.read_bytes()
    return _write(data, path)


# --------------------------------------------------------------------------- sequences


def forward_steps(step: int, n_forward: int) -> list[int]:
    """UI steps 0 .. step (exclusive of ``step`` itself), ``n_forward`` of them at most."""
    if step <= 0 or n_forward <= 0:
        return []
    vals = np.linspace(0, step, max(int(n_forward), 1) + 1)[:-1]
    out: list[int] = []
    for v in vals:
        s = int(round(v))
        if s < step and (not out or s > out[-1]):
            out.append(s)
    return out


def restore_animation_frames(x0: torch.Tensor | None, noise: torch.Tensor | None, schedule,
                             step: int, result, n_forward: int = 12) -> list[torch.Tensor]:
    """"Noising then restoring": the clean picture noised step by step up to ``step`` (the
    same noise draw the run used), then the reverse process's states x_t, then the final
    picture. With no original (generation) only the reverse part is returned."""
    seq: list[torch.Tensor] = []
    if noise is None:
        noise = getattr(result, "noise", None)
    if x0 is not None and noise is not None:
        seq += [x_at_step(x0, noise, schedule, s) for s in forward_steps(step, n_forward)]
    rev = [f.x_t for f in getattr(result, "frames", [])]
    if not rev and getattr(result, "start", None) is not None:
        rev = [result.start]
    seq += rev
    seq.append(result.final)
    return seq


def strip_frames(result, n: int = 8) -> tuple[list[torch.Tensor], list[str]]:
    """Up to ``n`` evenly chosen stages: the noisy start, x_t along the way, the result."""
    fr = list(getattr(result, "frames", []))
    if not fr:
        return [result.start, result.final], ["start", "result"]
    k = max(1, min(n - 1, len(fr)))
    idx = sorted({int(round(v)) for v in np.linspace(0, len(fr) - 1, k)})
    frames = [fr[i].x_t for i in idx] + [result.final]
    labels = [f"step {fr[i].step}" for i in idx] + ["result"]
    return frames, labels


def strip_png(result, n: int = 8, max_side: int = 192) -> bytes:
    """A PNG row of stages of the run (each shrunk to ``max_side``)."""
    frames, labels = strip_frames(result, n)
    small = []
    for f in frames:
        h, w = f.shape[-2:]
        th, tw = fit_size(h, w, max_side, min_side=96)
        if (th, tw) != (h, w):
            mode = "area" if th < h else "nearest"
            f = F.interpolate(f[None].float(), size=(th, tw), mode=mode)[0]
        small.append(f)
    return png_bytes(strip_image(small, labels))


def image_png(x: torch.Tensor) -> bytes:
    """The picture at full working size as PNG (8 bits, the same rounding as the metrics)."""
    return png_bytes(to_uint8(x.clamp(-1, 1)))


# --------------------------------------------------------------------------- metrics


def _finite(v):
    """JSON has no inf / nan: they become null (and numpy scalars plain numbers)."""
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_summary(result) -> dict:
    """What a restore run (:class:`diffusion_core.tasks.restore.RestoreResult`) measured, as
    plain data: steps, timings, device, the final and per-step metrics."""
    return {
        "steps_requested": result.steps_requested,
        "steps_run": result.steps_run,
        "seconds": round(result.seconds, 4),
        "steps_per_s": round(result.steps_per_s, 3) if result.seconds else None,
        "device": result.device,
        "timesteps": result.timesteps,
        "final": result.final_metrics,
        "per_step": result.metrics,
        "peak_gpu_memory_mb": result.peak_memory_mb,
        "stopped": result.stopped,
    }


def metrics_json(result, extra: dict | None = None) -> str:
    """The run's metrics (:func:`run_summary`) as strict JSON text (infinities and NaN become
    null); ``extra`` (e.g. the settings used) is stored under "settings"."""
    d = run_summary(result)
    if extra:
        d["settings"] = extra
    return json.dumps(_finite(d), indent=1)


# --------------------------------------------------------------------------- one call


def animation_size(side: int) -> dict:
    """Size options for :func:`frames_gif` / :func:`frames_mp4` of frames whose longest side
    is ``side``: shrunk to the preview size, or enlarged when they are tiny."""
    return dict(max_side=PREVIEW_MAX_SIDE, min_side=ENLARGED_SIDE if side < SMALL_SIDE else None)


def write_restore_animation(path: str | os.PathLike, x0: torch.Tensor | None, schedule,
                            step: int, result, n_forward: int = 12) -> bytes:
    """The "noising then restoring" animation of a run, as MP4 or GIF by the file suffix
    (for the command line: ``restore ... --mp4 FILE``)."""
    step = int(min(max(int(step), 0), schedule.T))
    seq = restore_animation_frames(x0, result.noise, schedule, step, result, n_forward)
    opts = animation_size(max(seq[0].shape[-2:]))
    if str(path).lower().endswith(".gif"):
        return frames_gif(seq, path, **opts)
    return frames_mp4(seq, path, **opts)
