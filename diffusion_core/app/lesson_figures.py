"""The Lesson page's pictures: each scene's one big visual as a self-contained SVG.

A scene's visual is one picture with its labels inside it, so that it scales as a whole to
whatever screen shows it (the page fits it to the viewport; the text stays sharp on a
projector). Photos and samples are embedded as PNGs; charts are drawn as SVG shapes. Only
numbers and text made here go into the markup (escaped), never a visitor's text.

* :func:`pictures_figure`: rows of labelled pictures (the one-step guesses, the live
  restore, the drawings, the guidance knob, the cost of steps);
* :func:`bell_figure`: a picture and the histogram of its pixel values against N(0, 1);
* :func:`scatter_figure`: 2-D samples of several models over their training data;
* :func:`replay_figure`: a run's frames played once, in the SVG itself (SMIL: no script),
  ending on the last frame;
* :func:`message_figure`: a scene that is not ready (or cannot be shown), in words.

No streamlit here.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
from PIL import Image

INK = "#111111"  # text: near black on white (high contrast)
MUTED = "#444444"
ACCENT = "#c2185b"  # the bell curve, highlights
BARS = "#1f77b4"
FONT = "Source Sans Pro, Helvetica, Arial, sans-serif"
WIDTH = 1200  # every figure's canvas width (the page scales it to the screen)


@dataclass(frozen=True)
class Tile:
    """One picture of a figure: an (H, W) or (H, W, 3) uint8 array, the line under it, and
    whether to enlarge it pixel by pixel (small drawings: kept as PNG) rather than smoothly
    (photos: JPEG, a tenth of the bytes of a noisy photo's PNG). ``uri``: the picture already
    encoded (:func:`image_uri`), for one that a live figure shows again and again."""

    image: np.ndarray
    caption: str = ""
    pixelated: bool = False
    uri: str | None = None


JPEG_QUALITY = 90


def png_uri(a: np.ndarray) -> str:
    """A uint8 (H, W) or (H, W, 3) array as a ``data:`` URI of a PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_uri(a: np.ndarray, pixelated: bool = False) -> str:
    """A picture as a ``data:`` URI: PNG for small drawings shown pixel by pixel, JPEG for
    photos (smooth, noisy: a PNG of a noisy photo is large and slow to make)."""
    if pixelated:
        return png_uri(a)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _text(x: float, y: float, s: str, size: float, anchor: str = "middle",
          weight: str = "normal", fill: str = INK) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:.1f}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{escape(s)}</text>')


def _image(x: float, y: float, w: float, h: float, a: np.ndarray, pixelated: bool,
           uri: str | None = None) -> str:
    style = ' style="image-rendering:pixelated"' if pixelated else ""
    return (f'<image x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'preserveAspectRatio="xMidYMid meet"{style} '
            f'href="{uri or image_uri(a, pixelated)}"/>')


def _svg(height: float, body: list[str], width: float = WIDTH) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" font-family="{FONT}">'
            f'<rect width="100%" height="100%" fill="#ffffff"/>{"".join(body)}</svg>')


def _aspect(a: np.ndarray) -> float:
    """Height over width of a picture."""
    return a.shape[0] / max(a.shape[1], 1)


def pictures_figure(rows: Sequence[Sequence[Tile]], row_labels: Sequence[str] = (),
                    title: str = "", caption_size: float = 30.0, gap: float = 18.0,
                    max_tile_h: float = 560.0) -> str:
    """Rows of pictures, a caption under each; ``row_labels`` (one per row) on the left
    (written upright, as the row's name), ``title`` above. Every tile has the same size: as
    wide as :data:`WIDTH` allows and at most ``max_tile_h`` tall; the canvas is as wide as
    its content (a tall figure is narrow, so that it fills a screen's height)."""
    label_w = 56.0 if row_labels else 0.0
    ncol = max(len(r) for r in rows)
    aspect = max(_aspect(t.image) for r in rows for t in r)
    tile_w = min((WIDTH - label_w - gap * (ncol + 1)) / ncol, max_tile_h / aspect)
    tile_h = tile_w * aspect
    captions = [t.caption for r in rows for t in r if t.caption]
    cap_h = caption_size * 1.45 if captions else 0.0
    longest = max((len(c) for c in captions), default=0) * caption_size * 0.52
    width = max(label_w + gap + ncol * (tile_w + gap), longest + 2 * gap,
                len(title) * caption_size * 0.62 + 2 * gap)
    title_h = caption_size * 1.7 if title else 0.0
    body: list[str] = []
    y = gap
    if title:
        body.append(_text(width / 2, y + caption_size * 1.05, title, caption_size * 1.1,
                          weight="bold"))
        y += title_h
    for r, row in enumerate(rows):
        row_w = len(row) * tile_w + (len(row) - 1) * gap
        x0 = label_w + (width - label_w - row_w) / 2
        if r < len(row_labels) and row_labels[r]:
            cx, cy = label_w / 2 + 6, y + tile_h / 2
            body.append(f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="{caption_size:.1f}" '
                        f'text-anchor="middle" font-weight="bold" fill="{INK}" '
                        f'transform="rotate(-90 {cx:.1f} {cy:.1f})">{escape(row_labels[r])}</text>')
        for c, tile in enumerate(row):
            x = x0 + c * (tile_w + gap)
            body.append(_image(x, y, tile_w, tile_h, tile.image, tile.pixelated, tile.uri))
            if tile.caption:
                body.append(_text(x + tile_w / 2, y + tile_h + caption_size * 1.15,
                                  tile.caption, caption_size))
        y += tile_h + cap_h + gap
    return _svg(y, body, width)


def bell_figure(picture: Tile, centres: np.ndarray, density: np.ndarray, title: str,
                bell: np.ndarray | None = None) -> str:
    """``picture`` on the left (its caption under it); on the right the histogram
    (``centres``, ``density``) of its pixel values with the standard normal density drawn
    over it, under ``title``."""
    width, height = 1100.0, 620.0
    pic_w = 470.0
    pic_h = min(pic_w * _aspect(picture.image), height - 140)
    pic_y = (height - pic_h - 50) / 2
    body = [_image(10, pic_y, pic_w, pic_h, picture.image, picture.pixelated),
            _text(10 + pic_w / 2, pic_y + pic_h + 40, picture.caption, 30)]
    # the chart
    left, right, top, bottom = 530.0, width - 20.0, 70.0, height - 90.0
    lo, hi = -3.5, 3.5
    ymax = max(0.6, float(np.max(density)) if len(density) else 0.6)

    def sx(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    def sy(d: float) -> float:
        return bottom - min(d, ymax) / ymax * (bottom - top)

    body.append(_text((left + right) / 2, 42, title, 32, weight="bold"))
    half = (centres[1] - centres[0]) / 2 if len(centres) > 1 else 0.05
    for c, d in zip(centres, density, strict=True):
        if d <= 0:
            continue
        body.append(f'<rect x="{sx(c - half):.1f}" y="{sy(d):.1f}" '
                    f'width="{max(sx(c + half) - sx(c - half) - 1, 1):.1f}" '
                    f'height="{bottom - sy(d):.1f}" fill="#9ecae1"/>')
    v = np.linspace(lo, hi, 141) if bell is None else bell
    pdf = np.exp(-v ** 2 / 2) / math.sqrt(2 * math.pi)
    pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(v, pdf, strict=True))
    body.append(f'<polyline points="{pts}" fill="none" stroke="{ACCENT}" stroke-width="5"/>')
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{INK}" '
                f'stroke-width="2"/>')
    for tick in (-3, -2, -1, 0, 1, 2, 3):
        body.append(f'<line x1="{sx(tick):.1f}" y1="{bottom}" x2="{sx(tick):.1f}" '
                    f'y2="{bottom + 10}" stroke="{INK}" stroke-width="2"/>')
        body.append(_text(sx(tick), bottom + 40, str(tick), 28))
    body.append(_text((left + right) / 2, height - 12, "pixel value", 28, fill=MUTED))
    # the legend, top left: the bell curve's left tail and the photo's bars leave room there
    body.append(_text(left + 4, top + 30, "red: the bell curve", 28, anchor="start", fill=ACCENT))
    body.append(_text(left + 4, top + 64, "N(0, 1)", 28, anchor="start", fill=ACCENT))
    body.append(_text(left + 4, top + 98, "bars: the pixels", 28, anchor="start",
                      fill="#3b83bd"))
    return _svg(height, body, width)


@dataclass(frozen=True)
class Panel:
    """One model's samples (N, 2) over the data (M, 2), with a title and a colour."""

    title: str
    samples: np.ndarray | None
    colour: str
    subtitle: str = ""


def scatter_figure(data: np.ndarray, panels: Sequence[Panel], ranges, n_data: int = 800,
                   n_samples: int = 700, columns: int | None = None) -> str:
    """Square panels, ``columns`` to a row (default: all in one row): the data in gray, each
    model's samples in its colour. With a free cell left in the last row, the legend goes
    there (else under the panels)."""
    n = max(len(panels), 1)
    ncol = min(columns or n, n)
    nrow = math.ceil(n / ncol)
    k = 1.35 if ncol < 3 else 1.0  # the text grows with the panels (the figure is shown smaller)
    gap, head = 24.0, 96.0 * k
    side = (WIDTH - gap * (ncol + 1)) / ncol
    (x_lo, x_hi), (y_lo, y_hi) = ranges
    span = max(x_hi - x_lo, y_hi - y_lo)
    cx, cy = (x_lo + x_hi) / 2, (y_lo + y_hi) / 2
    body: list[str] = []
    for i, p in enumerate(panels):
        x0, top = gap + (i % ncol) * (side + gap), (i // ncol) * (head + side + gap)
        y0 = top + head

        def px(v: np.ndarray, x0=x0) -> np.ndarray:
            return x0 + (v - cx + span / 2) / span * side

        def py(v: np.ndarray, y0=y0) -> np.ndarray:
            return y0 + side - (v - cy + span / 2) / span * side

        body.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{side:.1f}" height="{side:.1f}" '
                    f'fill="#fafafa" stroke="#999999" stroke-width="2"/>')
        body.append(_text(x0 + side / 2, top + 40 * k, p.title, 34 * k, weight="bold",
                          fill=p.colour))
        if p.subtitle:
            body.append(_text(x0 + side / 2, top + 80 * k, p.subtitle, 28 * k))
        d = data[:n_data]
        body.append("".join(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="{2.6 * k:.1f}" fill="#b0b0b0"/>'
                            for a, b in zip(px(d[:, 0]), py(d[:, 1]), strict=True)))
        if p.samples is not None and len(p.samples):
            s = p.samples[:n_samples]
            inside = ((px(s[:, 0]) > x0) & (px(s[:, 0]) < x0 + side)
                      & (py(s[:, 1]) > y0) & (py(s[:, 1]) < y0 + side))
            s = s[inside]
            body.append("".join(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="{3.4 * k:.1f}" '
                                f'fill="{p.colour}" '
                                f'fill-opacity="0.75"/>'
                                for a, b in zip(px(s[:, 0]), py(s[:, 1]), strict=True)))
    height = nrow * (head + side + gap)
    legend = ["gray: the data it learned from", "colour: what it makes"]
    if n % ncol:  # a free cell: the legend in it
        x = gap + (n % ncol) * (side + gap) + side / 2
        y = (nrow - 1) * (head + side + gap) + head + side / 2
        body += [_text(x, y - 24 * k, legend[0], 30 * k, fill=MUTED),
                 _text(x, y + 24 * k, legend[1], 30 * k, fill=MUTED)]
    else:
        body.append(_text(WIDTH / 2, height + 20, " · ".join(legend), 28, fill=MUTED))
        height += 44
    return _svg(height, body)


def bars_under(figure_rows: Sequence[Tile], values: Sequence[float], value_text: Sequence[str],
               title: str, bar_label: str, caption_size: float = 30.0) -> str:
    """One row of pictures with a bar under each (its height in proportion to ``values``),
    labelled with ``value_text``; ``bar_label`` names what the bars measure."""
    gap = 18.0
    ncol = max(len(figure_rows), 1)
    tile_w = (WIDTH - gap * (ncol + 1)) / ncol
    tile_h = tile_w * max(_aspect(t.image) for t in figure_rows)
    body = [_text(WIDTH / 2, 44, title, 34, weight="bold")]
    y = 70.0
    bar_top, bar_h = y + tile_h + caption_size * 2.0, 190.0
    top = max(max(values, default=0.0), 1e-9)
    for c, (tile, v, vt) in enumerate(zip(figure_rows, values, value_text, strict=True)):
        x = gap + c * (tile_w + gap)
        body.append(_image(x, y, tile_w, tile_h, tile.image, tile.pixelated))
        body.append(_text(x + tile_w / 2, y + tile_h + caption_size * 1.15, tile.caption,
                          caption_size, weight="bold"))
        h = max(v / top * bar_h, 3.0)
        body.append(f'<rect x="{x + tile_w * 0.2:.1f}" y="{bar_top + bar_h - h:.1f}" '
                    f'width="{tile_w * 0.6:.1f}" height="{h:.1f}" fill="{BARS}"/>')
        body.append(_text(x + tile_w / 2, bar_top + bar_h + caption_size * 1.2, vt,
                          caption_size))
    bottom = bar_top + bar_h + caption_size * 1.6
    body.append(_text(WIDTH / 2, bottom + caption_size * 0.9, bar_label, caption_size * 0.9,
                      fill=MUTED))
    return _svg(bottom + caption_size * 1.4, body)


def replay_figure(frames: Sequence[Tile], frame_labels: Sequence[str], title: str = "",
                  frame_s: float = 0.15, hold_s: float = 0.6, caption_size: float = 32.0,
                  max_tile_h: float = 600.0) -> str:
    """A run played back once inside the SVG and left on its last frame: one picture per
    frame, its label (``frame_labels``, e.g. "step 3 of 20") under it. Frame ``i`` shows
    from ``hold_s + (i - 1) * frame_s`` seconds (the first from the start) until the next
    one; the animation is SMIL (it runs inside an image, no script)."""
    aspect = max(_aspect(t.image) for t in frames)
    tile_w = min(WIDTH - 40.0, max_tile_h / aspect)
    tile_h = tile_w * aspect
    longest = max((len(c) for c in frame_labels), default=0) * caption_size * 0.52
    width = max(tile_w + 40.0, longest + 40.0, len(title) * caption_size * 0.62 + 40.0)
    top = caption_size * 1.7 if title else 16.0
    body = [_text(width / 2, caption_size * 1.15, title, caption_size * 1.05, weight="bold")] \
        if title else []
    x0 = (width - tile_w) / 2
    last = len(frames) - 1
    for i, (tile, label) in enumerate(zip(frames, frame_labels, strict=True)):
        parts = (_image(x0, top, tile_w, tile_h, tile.image, tile.pixelated)
                 + _text(width / 2, top + tile_h + caption_size * 1.3, label, caption_size))
        if last == 0:
            body.append(parts)
            continue
        begin = 0.0 if i == 0 else hold_s + (i - 1) * frame_s
        # visible from `begin`; hidden again when the next frame shows (the last one stays)
        show = f'<set attributeName="visibility" to="visible" begin="{begin:.2f}s"/>'
        hide = ("" if i == last else
                f'<set attributeName="visibility" to="hidden" begin="{hold_s + i * frame_s:.2f}s"/>')
        body.append(f'<g visibility="{"visible" if i == 0 else "hidden"}">{show}{hide}{parts}</g>')
    return _svg(top + tile_h + caption_size * 2, body, width)


def message_figure(lines: Sequence[str], height: float = 560.0) -> str:
    """A plain card with a few lines of text (a scene being prepared, or not available)."""
    body = [f'<rect x="10" y="10" width="{WIDTH - 20}" height="{height - 20:.0f}" rx="24" '
            f'fill="#f3f4f6" stroke="#c9ccd1" stroke-width="3"/>']
    y0 = height / 2 - (len(lines) - 1) * 30
    for k, line in enumerate(lines):
        body.append(_text(WIDTH / 2, y0 + k * 60, line, 40 if k == 0 else 32,
                          weight="bold" if k == 0 else "normal", fill=INK if k == 0 else MUTED))
    return _svg(height, body)
