"""Damage masks for inpainting: presets, drawn/uploaded masks and painted selections.

Every function returns a ``torch.bool`` tensor of shape ``(H, W)`` where ``True`` marks a
missing or damaged pixel (the part to fill in) and ``False`` a pixel to keep. Presets are
deterministic for a given seed and size. No streamlit here.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

PRESETS: dict[str, str] = {
    "blocks": "Missing blocks (a few square holes, about 10 % of the picture)",
    "scratches": "Scratches (thin lines, like an old print)",
    "dropout": "Random pixel dropout (a share of single pixels lost)",
    "text": "Text written over the picture",
}
DEFAULT_TEXT = "DIFFUSION LAB 1987"
MASK_MAX_BYTES = 25 * 1024 * 1024


class MaskError(ValueError):
    """A mask could not be made or read; ``str(e)`` is a sentence for the screen."""


def _check_size(h: int, w: int) -> tuple[int, int]:
    h, w = int(h), int(w)
    if h < 1 or w < 1:
        raise MaskError(f"A mask needs a positive size, not {h}×{w}.")
    return h, w


def _from_pil(im: Image.Image) -> torch.Tensor:
    """A mode-L/1 Pillow image -> bool tensor (pixels > 127)."""
    return torch.from_numpy(np.asarray(im.convert("L"), dtype=np.uint8) > 127)


def mask_fraction(mask: torch.Tensor) -> float:
    """Share of pixels marked as damaged (0..1)."""
    return float(mask.float().mean()) if mask.numel() else 0.0


# ----------------------------------------------------------------------------- presets


def blocks_mask(h: int, w: int, seed: int = 0, area: float = 0.10, count: int = 4) -> torch.Tensor:
    """``count`` equal, non-overlapping square holes covering ``area`` of the picture together.

    Squares are placed at random (seeded) with a gap between them; if they cannot be kept
    apart (tiny pictures, large areas), the remaining ones may touch or overlap."""
    h, w = _check_size(h, w)
    area = min(max(float(area), 0.0), 0.9)
    count = max(int(count), 1)
    m = np.zeros((h, w), dtype=bool)
    if area <= 0:
        return torch.from_numpy(m)
    side_h = side_w = max(1, round(math.sqrt(area * h * w / count)))
    side_h, side_w = min(side_h, h), min(side_w, w)
    if side_h * side_w * count < area * h * w * 0.8:  # a long thin picture: stretch the blocks
        side_w = min(w, max(1, round(area * h * w / count / side_h)))
    rng = np.random.default_rng(int(seed))
    placed: list[tuple[int, int]] = []
    gap = max(1, min(side_h, side_w) // 4)
    for _ in range(count):
        best = None
        for attempt in range(200):
            y = int(rng.integers(0, h - side_h + 1))
            x = int(rng.integers(0, w - side_w + 1))
            best = (y, x)
            if all(y >= py + side_h + gap or py >= y + side_h + gap
                   or x >= px + side_w + gap or px >= x + side_w + gap for py, px in placed):
                break
        assert best is not None
        placed.append(best)
        m[best[0]:best[0] + side_h, best[1]:best[1] + side_w] = True
    return torch.from_numpy(m)


def scratches_mask(h: int, w: int, seed: int = 0, count: int = 6,
                   width: int | None = None) -> torch.Tensor:
    """``count`` thin, gently curving lines across the picture, like scratches on a print."""
    h, w = _check_size(h, w)
    rng = np.random.default_rng(int(seed))
    width = int(width) if width else max(1, round(min(h, w) / 90))
    im = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(im)
    n_seg = 16
    for _ in range(max(int(count), 0)):
        # through a random point, in a random direction, wandering a little, both ways
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        angle0 = rng.uniform(0, math.pi)
        length = rng.uniform(0.5, 1.0) * math.hypot(h, w)
        halves = []
        for direction in (0.0, math.pi):
            x, y, angle = cx, cy, angle0 + direction
            half = []
            for _ in range(n_seg // 2):
                angle += rng.normal(0, 0.12)
                x += math.cos(angle) * length / n_seg
                y += math.sin(angle) * length / n_seg
                half.append((x, y))
            halves.append(half)
        pts = halves[1][::-1] + [(cx, cy)] + halves[0]
        d.line(pts, fill=255, width=width, joint="curve")
    return _from_pil(im)


def dropout_mask(h: int, w: int, seed: int = 0, fraction: float = 0.3) -> torch.Tensor:
    """Each pixel is lost independently with probability ``fraction``."""
    h, w = _check_size(h, w)
    rng = np.random.default_rng(int(seed))
    return torch.from_numpy(rng.random((h, w)) < min(max(float(fraction), 0.0), 1.0))


def text_mask(h: int, w: int, seed: int = 0, text: str = DEFAULT_TEXT,
              lines: int = 3) -> torch.Tensor:
    """Lines of bold text written across the picture (Pillow's built-in font)."""
    h, w = _check_size(h, w)
    rng = np.random.default_rng(int(seed))
    text = (str(text).strip() or DEFAULT_TEXT)[:60]
    lines = max(int(lines), 1)
    im = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(im)
    # size the font so that one line spans about 80 % of the width
    size = max(6, h // 8)
    font = ImageFont.load_default(size=size)
    tw = d.textlength(text, font=font)
    if tw > 0:
        size = max(6, min(int(size * 0.8 * w / tw), h // (lines + 1)))
        font = ImageFont.load_default(size=size)
    stroke = max(1, size // 12)
    for k in range(lines):
        y0 = (k + 0.5) * h / lines - size / 2 + rng.uniform(-0.1, 0.1) * h / lines
        x0 = rng.uniform(0.02, 0.18) * w
        d.text((x0, y0), text, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    return _from_pil(im)


_PRESET_FUNCS = {"blocks": blocks_mask, "scratches": scratches_mask, "dropout": dropout_mask,
                 "text": text_mask}


def preset_mask(name: str, h: int, w: int, seed: int = 0, **options) -> torch.Tensor:
    """A preset damage mask by name (see :data:`PRESETS`)."""
    if name not in _PRESET_FUNCS:
        raise MaskError(f"Unknown damage preset “{name}”; choose one of {', '.join(PRESETS)}.")
    return _PRESET_FUNCS[name](h, w, seed=seed, **options)


# ----------------------------------------------------------------------------- drawn masks


def _to_array(drawing) -> np.ndarray:
    if isinstance(drawing, Image.Image):
        if drawing.mode not in ("L", "LA", "RGB", "RGBA"):
            drawing = drawing.convert("RGBA")
        return np.asarray(drawing)
    if isinstance(drawing, torch.Tensor):
        drawing = drawing.detach().cpu().numpy()
    return np.asarray(drawing)


def mask_from_drawing(drawing, size: tuple[int, int] | None = None,
                      threshold: float = 0.5) -> torch.Tensor:
    """A mask from a drawn image (e.g. a canvas's RGBA picture, or a black-and-white mask).

    * With an alpha channel that is actually used (some pixel not fully opaque), the painted
      pixels are those whose alpha is above ``threshold``: strokes on a transparent canvas.
    * Otherwise the painted pixels are those whose brightest channel is above ``threshold``:
      white (or any light colour) strokes on black.

    Values may be uint8 (0..255) or float (0..1). ``size = (H, W)`` rescales the result to the
    working picture (area-averaged, then thresholded at a half)."""
    arr = _to_array(drawing)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or 0 in arr.shape:
        raise MaskError(f"A drawn mask must be an H×W or H×W×(1..4) picture, not {arr.shape}.")
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    a = arr.astype(np.float32) / scale
    c = a.shape[2]
    if c in (2, 4) and float(a[:, :, -1].min()) < 1.0:
        painted = a[:, :, -1] > threshold
    else:
        colour = a[:, :, : (c - 1 if c in (2, 4) else c)]
        painted = colour.max(axis=2) > threshold
    mask = torch.from_numpy(np.ascontiguousarray(painted))
    if size is not None:
        mask = resize_mask(mask, size)
    return mask


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Rescale a mask to ``size = (H, W)``: a target pixel is damaged when at least half of
    the area it covers is (nearest neighbour when enlarging)."""
    h, w = _check_size(*size)
    if tuple(mask.shape) == (h, w):
        return mask.bool()
    im = Image.fromarray(mask.cpu().numpy().astype(np.uint8) * 255)
    shrinking = im.width > w or im.height > h
    im = im.resize((w, h), Image.Resampling.BOX if shrinking else Image.Resampling.NEAREST)
    return torch.from_numpy(np.asarray(im) >= 128)


def load_mask(source, size: tuple[int, int] | None = None, threshold: float = 0.5) -> torch.Tensor:
    """Read a mask picture (path, bytes or file-like): white (or painted on transparent) =
    damaged. Raises :class:`MaskError` with a readable sentence if it is not a picture."""
    try:
        if isinstance(source, (str, Path)):
            data = Path(source).read_bytes()
        elif isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        elif hasattr(source, "getvalue"):
            data = source.getvalue()
        else:
            data = source.read()
    except OSError as e:
        raise MaskError(f"The mask file could not be read ({e.strerror or e}).") from e
    if not data:
        raise MaskError("The mask file is empty.")
    if len(data) > MASK_MAX_BYTES:
        raise MaskError("The mask file is too large (more than 25 MB).")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.width * im.height > Image.MAX_IMAGE_PIXELS:
                raise MaskError("The mask picture has too many pixels.")
            if im.mode in ("I", "I;16", "F") or im.mode.startswith("I;"):
                arr = np.asarray(im, dtype=np.float32)
                hi = float(arr.max()) if arr.size else 0.0
                arr = arr / hi if hi > 0 else arr
                return mask_from_drawing(arr, size, threshold)
            rgba = im.convert("RGBA") if "A" in im.mode or "transparency" in im.info \
                else im.convert("RGB")
            return mask_from_drawing(rgba, size, threshold)
    except MaskError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoding problem becomes one message
        raise MaskError("The mask file is not a picture that can be read (use a PNG: white = "
                        "damaged, black = keep).") from e


# ----------------------------------------------------------------------------- painted selections


def selection_mask(h: int, w: int, selection: dict | None, brush: int = 4) -> torch.Tensor:
    """A mask from a plotly selection over the picture (pixel coordinates: x = column,
    y = row), as ``st.plotly_chart(on_select=...)`` returns it:

    * ``box``: rectangles ``{"x": [x0, x1], "y": [y0, y1]}`` are filled exactly;
    * ``lasso``: polygons ``{"x": [...], "y": [...]}`` are filled;
    * ``points``: each clicked/selected point paints a square of half-size ``brush``.
    """
    h, w = _check_size(h, w)
    im = Image.new("L", (w, h), 0)
    if not selection:
        return _from_pil(im)
    d = ImageDraw.Draw(im)
    brush = max(int(brush), 0)
    for box in selection.get("box") or []:
        xs, ys = list(box.get("x") or []), list(box.get("y") or [])
        if len(xs) >= 2 and len(ys) >= 2:
            x0, x1 = sorted(float(v) for v in xs[:2])
            y0, y1 = sorted(float(v) for v in ys[:2])
            # the pixels whose centres lie inside; a box within one pixel marks that pixel
            c0, c1 = math.ceil(x0), math.floor(x1)
            r0, r1 = math.ceil(y0), math.floor(y1)
            if c1 < c0:
                c0 = c1 = round((x0 + x1) / 2)
            if r1 < r0:
                r0 = r1 = round((y0 + y1) / 2)
            d.rectangle([c0, r0, c1, r1], fill=255)
    for lasso in selection.get("lasso") or []:
        pts = [(float(x), float(y)) for x, y in zip(lasso.get("x") or [], lasso.get("y") or [])]
        if len(pts) >= 3:
            d.polygon(pts, fill=255)
    for p in selection.get("points") or []:
        try:
            x, y = float(p["x"]), float(p["y"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(x) and math.isfinite(y):
            d.rectangle([round(x) - brush, round(y) - brush, round(x) + brush, round(y) + brush],
                        fill=255)
    return _from_pil(im)


def paint_grid(h: int, w: int, cells: int = 48) -> tuple[np.ndarray, np.ndarray, int]:
    """Pixel coordinates (xs, ys) of a grid of about ``cells`` x ``cells`` points over the
    picture, for invisible scatter points that make a plot selectable, and the brush
    half-size (in pixels) that lets neighbouring points' squares just touch."""
    h, w = _check_size(h, w)
    step = max(1, math.ceil(max(h, w) / max(int(cells), 1)))
    ys, xs = np.meshgrid(np.arange(step // 2, h, step), np.arange(step // 2, w, step),
                         indexing="ij")
    return xs.ravel().astype(float), ys.ravel().astype(float), max(0, math.ceil(step / 2))
