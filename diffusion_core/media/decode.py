"""Decoding user images (uploads, files) into model-ready tensors: the hostile-input decoder.

Every picture enters Diffusion Lab through :func:`load_image`.  It is deliberately defensive:
uploads can be empty, truncated, enormous, disguised text files, decompression bombs,
animated, 16-bit, floating point, CMYK, rotated by EXIF tags, ...  Every such problem surfaces
as one exception type, :class:`ImageLoadError`, whose ``str()`` is a short sentence that can
be shown to the user as is.

The result is a :class:`LoadedImage` holding a ``torch.float32`` tensor of shape ``(C, H, W)``
with ``C`` equal to 1 (gray) or 3 (RGB) and values in ``[-1, 1]``, plus human-readable notes
about everything that was done to the picture.  (:mod:`diffusion_core.media.convert` turns
such tensors back into arrays and Pillow images; :mod:`diffusion_core.media.samples` is the
catalogue of built-in pictures.)

Importing this module lowers Pillow's global decompression-bomb limit
(``PIL.Image.MAX_IMAGE_PIXELS``) to :data:`MAX_IMAGE_PIXELS`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Union

import numpy as np
import torch
from PIL import Image, ImageChops, ImageOps

from diffusion_core.units import from_255

__all__ = [
    "MAX_IMAGE_PIXELS",
    "MAX_INPUT_BYTES",
    "SUPPORTED_FORMATS",
    "ImageLoadError",
    "ImageSource",
    "LoadedImage",
    "Mode",
    "load_image",
]

#: Largest accepted image, in pixels (width × height), checked before decoding.
MAX_IMAGE_PIXELS: int = 40_000_000
#: Largest accepted input, in bytes.
MAX_INPUT_BYTES: int = 50 * 1024 * 1024
#: Pillow format identifiers we are willing to decode (GIF is accepted for animations).
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")

# Keep Pillow's own decompression-bomb guard, at our (stricter) limit: Pillow warns above
# this many pixels and raises above twice as many; load_image turns both into errors.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

ImageSource = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes]]
Mode = Literal["auto", "rgb", "gray"]

_FORMAT_LIST_TEXT = "PNG, JPEG, WebP, BMP, TIFF, GIF"
_EXIF_ORIENTATION = 0x0112
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
_WHITE_NOTE = "Transparency flattened onto white"
# What Pillow raises when parsing malformed headers or metadata.
_HEADER_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    EOFError,
    struct.error,
)


class ImageLoadError(ValueError):
    """The input could not be turned into an image.

    ``str(error)`` is a short, complete sentence meant to be shown to the user.
    """


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """An image ready for the models.

    Attributes:
        tensor: ``torch.float32`` tensor of shape ``(C, H, W)``, ``C`` in ``{1, 3}``,
            values in ``[-1, 1]`` (``-1`` black, ``+1`` white).
        original_size: ``(width, height)`` as displayed (after EXIF rotation), before any
            resizing.
        was_resized: whether the image was scaled down to respect ``max_side``.
        notes: human-readable sentences describing every conversion that was applied.
        format: the file format as Pillow names it, e.g. ``"PNG"`` or ``"JPEG"``.
    """

    tensor: torch.Tensor
    original_size: tuple[int, int]
    was_resized: bool
    notes: tuple[str, ...]
    format: str

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of :attr:`tensor`."""
        return int(self.tensor.shape[-1]), int(self.tensor.shape[-2])

    @property
    def channels(self) -> int:
        """Number of channels: 1 (gray) or 3 (RGB)."""
        return int(self.tensor.shape[0])

    @property
    def is_gray(self) -> bool:
        """True for single-channel images."""
        return self.channels == 1


# --------------------------------------------------------------------------------------
# Reading the raw bytes
# --------------------------------------------------------------------------------------


def _format_bytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _too_many_bytes(n: int) -> ImageLoadError:
    return ImageLoadError(
        f"The file is too large: {_format_bytes(n)}; the limit is {MAX_INPUT_BYTES // (1024 * 1024)} MB."
    )


def _read_source(source: ImageSource) -> bytes:
    """Return the raw bytes of ``source``, enforcing :data:`MAX_INPUT_BYTES`."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            n = path.stat().st_size
            if not path.is_file():
                raise ImageLoadError(f"“{path.name}” is not a file.")
            if n > MAX_INPUT_BYTES:
                raise _too_many_bytes(n)
            with path.open("rb") as fh:
                data = fh.read(MAX_INPUT_BYTES + 1)
        except FileNotFoundError as exc:
            raise ImageLoadError(f"The file “{path.name}” does not exist.") from exc
        except OSError as exc:
            raise ImageLoadError(f"The file “{path.name}” could not be read.") from exc
    elif hasattr(source, "getvalue") or hasattr(source, "read"):
        try:
            if hasattr(source, "getvalue"):
                data = source.getvalue()  # type: ignore[union-attr]
            else:
                data = source.read(MAX_INPUT_BYTES + 1)  # type: ignore[union-attr]
        except OSError as exc:
            raise ImageLoadError("The uploaded file could not be read.") from exc
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise TypeError("file-like image sources must be opened in binary mode")
    else:
        raise TypeError(
            f"load_image expects bytes, a file path or a binary file-like object, not {type(source).__name__}"
        )
    if len(data) == 0:
        raise ImageLoadError("The file is empty (0 bytes).")
    if len(data) > MAX_INPUT_BYTES:
        raise _too_many_bytes(len(data))
    return data


def _explain_unidentified(data: bytes) -> str:
    """A helpful message for bytes that no supported decoder recognises."""
    head = data[:1024]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "This is a ZIP archive, not an image. Unzip it and choose one image inside."
    if head.startswith(b"%PDF"):
        return "This is a PDF document, not an image. Export a page as PNG or JPEG."
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith(b"avi"):
            return "AVIF images are not supported; please convert the image to PNG or JPEG."
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "HEIC/HEIF photos are not supported; please convert the photo to JPEG or PNG."
        return "This looks like a video or other media file, not an image."
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or (
        b"\x00" not in head and _mostly_printable(head)
    ):
        low = head.lower()
        if b"<svg" in low:
            return "SVG drawings are not supported; please export the drawing as PNG."
        if b"<html" in low or b"<!doctype" in low or b"<head" in low or b"<body" in low:
            return "This file is a web page (HTML), not an image."
        return "This file contains text, not an image."
    return f"This file is not an image we can read ({_FORMAT_LIST_TEXT})."


def _mostly_printable(head: bytes) -> bool:
    """True if ``head`` decodes as UTF-8 text made of printable characters."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut off at the end
            return False
        text = head[: exc.start].decode("utf-8")
    if not text:
        return False
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
    return printable / len(text) > 0.95


def _sniff_format(data: bytes) -> str | None:
    """Name of the supported format whose magic number ``data`` starts with, if any."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WebP"
    if data.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "TIFF"
    if data.startswith(b"BM"):
        return "BMP"
    return None


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header alone, bypassing Pillow's bomb check (no decoding).

    Only used to word the "too large" message when :func:`PIL.Image.open` refused the file.
    """
    for fmt in SUPPORTED_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is None or (accept is not None and not accept(data[:16])):
            continue
        try:
            return factory(io.BytesIO(data), None).size
        except _HEADER_ERRORS:
            continue
    return None


# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------

_BOMB_PIXELS_RE = re.compile(r"\((\d+) pixels\)")


def _too_many_pixels(width: int | None, height: int | None, pixels: int | None) -> str:
    limit = f"the limit is {MAX_IMAGE_PIXELS / 1e6:g} megapixels"
    if width is not None and height is not None:
        mp = width * height / 1e6
        return f"The image is too large: {width}×{height} pixels ({mp:,.0f} megapixels); {limit}."
    if pixels is not None:
        return f"The image is too large: about {pixels / 1e6:,.0f} megapixels; {limit}."
    return f"The image is too large; {limit}."


def _bomb_message(exc: Exception, data: bytes) -> str:
    size = _declared_size(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        return _too_many_pixels(size[0], size[1], None)
    match = _BOMB_PIXELS_RE.search(str(exc))
    return _too_many_pixels(None, None, int(match.group(1)) if match else None)


def _not_readable(data: bytes) -> str:
    """Message for data Pillow could not open: damaged known format, or not an image."""
    sniffed = _sniff_format(data)
    return _damaged(sniffed) if sniffed else _explain_unidentified(data)


def _open(data: bytes) -> Image.Image:
    """Identify the image (reads the header only) with the bomb guard turned into errors."""
    try:
        return Image.open(io.BytesIO(data), formats=list(SUPPORTED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(_bomb_message(exc, data)) from exc
    # UnidentifiedImageError, or any error from a plugin choking on a malformed header
    except Exception as exc:
        raise ImageLoadError(_not_readable(data)) from exc


@contextlib.contextmanager
def _pillow_guard() -> Iterator[None]:
    """Decompression-bomb warnings become errors; Pillow's metadata warnings are silenced.

    Pillow warns (``UserWarning``) about corrupt EXIF/TIFF tags in user files; those are
    not actionable, and anything that actually prevents decoding raises anyway.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _damaged(fmt: str) -> str:
    fmt = {"WEBP": "WebP", "MPO": "JPEG"}.get(fmt, fmt)
    return f"The file looks like a {fmt} image but is damaged or truncated and cannot be read."


def _orientation(im: Image.Image, notes: list[str]) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
        value = int(value)
    except _HEADER_ERRORS:
        # damaged EXIF blocks are common and harmless
        notes.append("Damaged EXIF metadata was ignored")
        return 1
    return value if 1 <= value <= 8 else 1


def _target_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Size with the longest side at most ``max_side``, keeping the aspect (never upscales)."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return (
        min(max_side, max(1, round(width * scale))),
        min(max_side, max(1, round(height * scale))),
    )


def _has_visible_alpha(alpha: Image.Image) -> bool:
    lo, _hi = alpha.getextrema()
    return lo < 255


def _flatten(im: Image.Image, notes: list[str]) -> Image.Image:
    """Composite an ``LA``/``RGBA`` image onto white, returning ``L``/``RGB``."""
    base_mode = "L" if im.mode == "LA" else "RGB"
    alpha = im.getchannel("A")
    color = im.convert(base_mode)
    if not _has_visible_alpha(alpha):
        return color
    background = Image.new(base_mode, im.size, 255 if base_mode == "L" else (255, 255, 255))
    background.paste(color, mask=alpha)
    notes.append(_WHITE_NOTE)
    return background


def _rgb_is_gray(im: Image.Image) -> bool:
    r, g, b = im.split()
    return ImageChops.difference(r, g).getbbox() is None and (ImageChops.difference(g, b).getbbox() is None)


def _declared_bits(im: Image.Image) -> int | None:
    tags = getattr(im, "tag_v2", None)
    if tags is not None:
        bits = tags.get(258)
        if isinstance(bits, tuple):
            bits = bits[0] if bits else None
        if isinstance(bits, int) and bits > 0:
            return bits
    if im.format == "PNG":
        return 16
    return None


def _int_to_unit(im: Image.Image, notes: list[str]) -> np.ndarray:
    """Integer modes (``I;16*``, ``I``) -> float32 array in [0, 1]."""
    arr = np.asarray(im)
    if im.mode.startswith("I;16"):
        bits, signed = 16, im.mode.endswith("S")
    else:
        bits = _declared_bits(im) or 32
        tags = getattr(im, "tag_v2", None)
        fmt = tags.get(339) if tags is not None else None
        if isinstance(fmt, tuple):
            fmt = fmt[0] if fmt else None
        signed = fmt == 2
    if bits <= 16:
        offset = 2 ** (bits - 1) if signed else 0
        scale = 1.0 / (2**bits - 1)
        out = (arr.astype(np.float32) + offset) * scale
        notes.append(f"{bits}-bit image converted to the standard 0–1 range (divided by {2**bits - 1})")
        return np.clip(out, 0.0, 1.0, out=out)
    lo, hi = int(arr.min()), int(arr.max())
    out = arr.astype(np.float32)
    if hi > lo:
        out -= lo
        out *= 1.0 / (hi - lo)
        notes.append(f"32-bit integer image stretched from its value range [{lo}, {hi}]")
    else:
        out[...] = 0.0 if hi <= 0 else 1.0
        notes.append("32-bit integer image has a single value; shown as flat")
    return out


def _float_to_unit(im: Image.Image, notes: list[str]) -> np.ndarray:
    """Mode ``F`` -> float32 array in [0, 1]; NaN/inf are set to black with a note."""
    arr = np.array(im, dtype=np.float32)
    finite = np.isfinite(arr)
    all_finite = bool(finite.all())
    if not all_finite:
        n_bad = int(arr.size - np.count_nonzero(finite))
        if n_bad == arr.size:
            raise ImageLoadError("The image contains no valid pixel values (all NaN or infinite).")
        notes.append(f"{n_bad} pixel value(s) were NaN or infinite and were set to black")
        values = arr[finite]
    else:
        values = arr
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0.0 and hi <= 1.0:
        notes.append("32-bit floating-point image used as is (values already within 0–1)")
    elif hi > lo:
        arr -= lo
        arr *= 1.0 / (hi - lo)
        notes.append(f"Floating-point image stretched from [{lo:.4g}, {hi:.4g}] to 0–1")
    else:
        arr[...] = min(max(lo, 0.0), 1.0)
        notes.append(f"Floating-point image has a single value ({lo:.4g}); clipped to 0–1")
    if not all_finite:
        arr[~finite] = 0.0
    return np.clip(arr, 0.0, 1.0, out=arr)


#: Pillow modes that are gray or colour, and the mode with alpha each is flattened through
_WITH_ALPHA = {"L": "LA", "LA": "LA", "La": "LA", "RGB": "RGBA", "RGBA": "RGBA", "RGBa": "RGBA"}


def _canonical(im: Image.Image, notes: list[str], rawmodes: str) -> Image.Image:
    """Convert any decoded Pillow image to mode ``L``, ``RGB`` or ``F`` (values in 0–1)."""
    mode = im.mode
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I"):
        return Image.fromarray(_int_to_unit(im, notes))
    if mode == "F":
        return Image.fromarray(_float_to_unit(im, notes))
    if ";16" in rawmodes:
        notes.append("16-bit image converted to 8-bit range")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        rgb = im.convert("RGBA" if has_alpha else "RGB")
        out = _flatten(rgb, notes) if has_alpha else rgb
        return out.convert("L") if _rgb_is_gray(out) else out
    if mode in _WITH_ALPHA:  # gray or colour, with an alpha channel or a transparent colour
        if mode in ("L", "RGB") and "transparency" not in im.info:
            return im
        return _flatten(im.convert(_WITH_ALPHA[mode]), notes)
    if mode == "CMYK":
        notes.append("CMYK colours converted to RGB (approximately)")
        return im.convert("RGB")
    if mode == "YCbCr":
        return im.convert("RGB")
    try:  # any other colour mode Pillow can convert (e.g. LAB, HSV, RGBX)
        target = "RGBA" if "A" in mode else "RGB"
        converted = im.convert(target)
    except Exception as exc:
        raise ImageLoadError(f"Images in colour mode {mode} are not supported.") from exc
    notes.append(f"Colour mode {mode} converted to RGB")
    return _flatten(converted, notes) if target == "RGBA" else converted


def load_image(
    source: ImageSource,
    max_side: int | None = 512,
    mode: Mode = "auto",
) -> LoadedImage:
    """Decode an image from bytes, a path or a binary file-like object.

    Args:
        source: ``bytes``/``bytearray``, a ``str``/``pathlib.Path`` to a file, or a binary
            file-like object (anything with ``getvalue()`` such as Streamlit's
            ``UploadedFile``/``io.BytesIO``, or with ``read()``).
        max_side: downscale (Lanczos, aspect kept, never upscaled) so that the longest
            side is at most this many pixels; ``None`` keeps the full size.  The pixel
            limit :data:`MAX_IMAGE_PIXELS` applies either way.
        mode: ``"auto"`` keeps gray images gray (1 channel) and makes everything else
            RGB; ``"rgb"`` always returns 3 channels; ``"gray"`` always returns 1.

    Returns:
        A :class:`LoadedImage`; its tensor is float32 ``(C, H, W)`` in ``[-1, 1]``.

    Raises:
        ImageLoadError: for anything that is not a readable, supported, reasonably sized
            image; ``str(error)`` is a short message suitable for end users.
        TypeError: if ``source`` is of an unsupported Python type.
        ValueError: for invalid ``max_side`` / ``mode`` arguments.
    """
    if mode not in ("auto", "rgb", "gray"):
        raise ValueError(f"mode must be 'auto', 'rgb' or 'gray', not {mode!r}")
    if max_side is not None and (not isinstance(max_side, int) or max_side < 1):
        raise ValueError(f"max_side must be a positive int or None, not {max_side!r}")

    data = _read_source(source)
    with _pillow_guard():
        return _decode(data, max_side, mode)


def _decode(data: bytes, max_side: int | None, mode: Mode) -> LoadedImage:
    """The body of :func:`load_image`, run inside :func:`_pillow_guard`."""
    im = _open(data)
    notes: list[str] = []
    fmt = "JPEG" if im.format == "MPO" else str(im.format or "unknown")

    width, height = im.size
    if width <= 0 or height <= 0:
        raise ImageLoadError(f"The image has no pixels ({width}×{height}).")
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageLoadError(_too_many_pixels(width, height, None))

    try:
        if getattr(im, "is_animated", False):
            im.seek(0)
            notes.append(
                "Multi-page file: first page used" if fmt == "TIFF" else "Animated file: first frame used"
            )
    except Exception as exc:
        raise ImageLoadError(_damaged(fmt)) from exc

    # EXIF orientation lives in the header for JPEG and TIFF (Pillow itself rotates TIFFs
    # while decoding and already reports the rotated size); PNG and WebP may store it
    # after the pixel data, so it is (re-)read after decoding below.
    header_orientation = _orientation(im, []) if fmt in ("JPEG", "TIFF") else 1

    # Describe the stored sample layout before decoding (Pillow drops `tile` on load).
    rawmodes = " ".join(str(getattr(t, "args", "")) for t in getattr(im, "tile", []) or [])

    try:
        if fmt == "JPEG" and max_side is not None:
            raw_target = _target_size(width, height, max_side)
            if raw_target != (width, height):
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale while that stays at least
                # as large as the target: much faster and lighter for big photos.
                im.draft(None, raw_target)
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(_bomb_message(exc, data)) from exc
    except MemoryError as exc:
        raise ImageLoadError(_too_many_pixels(width, height, None)) from exc
    except Exception as exc:  # truncated data, broken chunks, decoder errors, ...
        raise ImageLoadError(_damaged(fmt)) from exc

    orientation = _orientation(im, notes)
    swaps = orientation in _SWAPPING_ORIENTATIONS
    rotated_by_pillow = header_orientation != 1 and orientation == 1
    original_size = (height, width) if swaps else (width, height)
    target = _target_size(*original_size, max_side)

    try:
        if orientation != 1:
            transposed = ImageOps.exif_transpose(im)
            if transposed is not None:
                im = transposed
        if orientation != 1 or rotated_by_pillow:
            notes.append("Rotated according to EXIF orientation")
        canon = _canonical(im, notes, rawmodes)
        if mode == "gray" and canon.mode == "RGB":
            canon = canon.convert("L")
            notes.append("Converted to grayscale")
        elif mode == "rgb" and canon.mode in ("L", "F"):
            notes.append("Gray image repeated into 3 identical RGB channels")
        was_resized = target != original_size
        # (a JPEG draft may already have done part of the work)
        if canon.size != target:
            canon = canon.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        if was_resized:
            notes.append(f"Resized from {original_size[0]}×{original_size[1]} to {target[0]}×{target[1]}")
        arr = np.array(canon, dtype=np.float32)  # a writable copy
    except ImageLoadError:
        raise
    except MemoryError as exc:
        raise ImageLoadError(_too_many_pixels(width, height, None)) from exc
    except Exception as exc:
        raise ImageLoadError(_damaged(fmt)) from exc

    if arr.ndim == 2:
        arr = arr[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    # 8-bit levels (0..255), or values already in 0..1 for floating-point files ("F")
    tensor = tensor * 2.0 - 1.0 if canon.mode == "F" else from_255(tensor)
    tensor = torch.nan_to_num(tensor, nan=-1.0).clamp_(-1.0, 1.0).contiguous()
    if mode == "rgb" and tensor.shape[0] == 1:
        tensor = tensor.repeat(3, 1, 1)

    return LoadedImage(
        tensor=tensor,
        original_size=(int(original_size[0]), int(original_size[1])),
        was_resized=was_resized,
        notes=tuple(notes),
        format=fmt,
    )
