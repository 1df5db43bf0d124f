"""Generate a corpus of bad, hostile and unusual image files for the loader tests.

Nothing here is committed as binary data: the tests call :func:`make_corpus` with a
temporary directory.  It can also be run by hand to inspect the files::

    python tests/data/make_bad.py /tmp/bad-images

Everything is generated cheaply in memory (the 20000×20000 PNG is a 1-bit image whose
zlib stream is a few dozen kilobytes; decompression bombs only *declare* huge sizes).
"""

from __future__ import annotations

import io
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------
# Hand-written PNG / BMP pieces (for headers Pillow would refuse to write)
# --------------------------------------------------------------------------------------


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload, CRC."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, idat: bytes) -> bytes:
    """A PNG file with the given IHDR fields and an already-compressed IDAT payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def compress_rows(rows: Iterable[bytes]) -> bytes:
    """zlib-compress PNG scanlines (each row must already start with its filter byte)."""
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for row in rows]
    parts.append(comp.flush())
    return b"".join(parts)


def huge_1bit_png(width: int, height: int) -> bytes:
    """A *valid* 1-bit black PNG of any size; the repeated rows compress to almost nothing."""
    row = b"\x00" + bytes((width + 7) // 8)
    return png_bytes(width, height, 1, 0, compress_rows(row for _ in range(height)))


def declared_only_png(width: int, height: int) -> bytes:
    """A PNG header declaring ``width``×``height`` with a token IDAT (a bomb / lie)."""
    return png_bytes(width, height, 8, 2, zlib.compress(b"\x00" * 64))


def rgb48_png(width: int, height: int) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow reads it as 8-bit RGB)."""
    rng = np.random.default_rng(48)
    rows = []
    for _ in range(height):
        px = rng.integers(0, 65536, size=width * 3, dtype=np.uint16).astype(">u2").tobytes()
        rows.append(b"\x00" + px)
    return png_bytes(width, height, 16, 2, compress_rows(rows))


def bmp_header_only(width: int, height: int) -> bytes:
    """A 24-bit BMP header declaring a huge size, followed by a few pixel bytes."""
    pixels = bytes(64)
    offset = 14 + 40
    file_header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return file_header + dib + pixels


# --------------------------------------------------------------------------------------
# Pillow-made files
# --------------------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    """Save ``im`` to bytes in format ``fmt``."""
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def gradient_rgb(width: int, height: int) -> Image.Image:
    """A deterministic colourful test picture."""
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack(
        [
            (x * 255 // max(width - 1, 1)),
            (y * 255 // max(height - 1, 1)),
            ((x + y) * 127 // max(width + height - 2, 1)),
        ],
        axis=-1,
    ).astype(np.uint8)
    return Image.fromarray(arr)


def exif_rotated_jpeg(orientation: int = 6) -> bytes:
    """A 40×20 landscape JPEG, red in its stored top-left corner, with an EXIF orientation.

    Orientation 6 means "rotate 90° clockwise to display": viewers show a 20×40 portrait
    whose red corner is at the top *right*.
    """
    arr = np.full((20, 40, 3), 255, np.uint8)
    arr[:8, :8] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(arr), "JPEG", quality=95, exif=exif)


def animated(fmt: str) -> bytes:
    """A 3-frame animation: red, green, blue 16×12 frames."""
    frames = [Image.new("RGB", (16, 12), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    extra: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    return encode(
        frames[0],
        fmt,
        save_all=True,
        append_images=frames[1:],
        duration=100,
        loop=0,
        **extra,
    )


def multipage_tiff() -> bytes:
    """A 2-page TIFF: a black page followed by a white one."""
    pages = [Image.new("L", (10, 8), 0), Image.new("L", (10, 8), 255)]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def float_tiff(arr: np.ndarray) -> bytes:
    """A 32-bit float single-channel TIFF."""
    return encode(Image.fromarray(arr.astype(np.float32)), "TIFF")


def patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the dimensions in a baseline JPEG's SOF0 header."""
    i = data.index(b"\xff\xc0")
    return data[: i + 5] + struct.pack(">HH", height, width) + data[i + 9 :]


def zip_with_png() -> bytes:
    """A ZIP archive containing one valid PNG."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inside.png", encode(gradient_rgb(8, 8), "PNG"))
    return buf.getvalue()


def _corpus_builders() -> dict[str, Callable[[], bytes]]:
    png = encode(gradient_rgb(64, 48), "PNG")
    jpg = encode(gradient_rgb(64, 48), "JPEG", quality=90)
    gif = encode(gradient_rgb(64, 48).convert("P"), "GIF")
    webp = encode(gradient_rgb(64, 48), "WEBP")
    tif = encode(gradient_rgb(64, 48), "TIFF")
    _y, x = np.mgrid[0:16, 0:32]
    ramp16 = (x * 65535 // 31).astype(np.uint16)
    nan_arr = np.linspace(0.0, 1.0, 16 * 16, dtype=np.float32).reshape(16, 16)
    nan_arr[0, 0], nan_arr[1, 1], nan_arr[2, 2] = np.nan, np.inf, -np.inf
    palette = Image.new("P", (12, 10), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0, 0, 0] * 253)
    palette.paste(1, (0, 0, 6, 10))
    palette.paste(2, (6, 0, 12, 5))
    la = Image.merge("LA", (Image.new("L", (10, 10), 0), Image.linear_gradient("L").resize((10, 10))))
    rgba = Image.new("RGBA", (10, 10), (0, 0, 255, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 5, 10))

    builders: dict[str, Callable[[], bytes]] = {
        # --- not images at all ---------------------------------------------------------
        "zero_bytes.png": lambda: b"",
        "text.png": lambda: b"Hello, this is not an image.\nJust some text.\n" * 3,
        "html.jpg": lambda: (
            b"<!DOCTYPE html>\n<html><head><title>404</title></head><body><h1>Not Found</h1></body></html>\n"
        ),
        "drawing_svg.png": lambda: (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/'
            b'2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>\n'
        ),
        "document.pdf": lambda: b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
        "archive.zip": zip_with_png,
        "archive_renamed.png": zip_with_png,
        "random_garbage.bin": lambda: np.random.default_rng(0).bytes(4096),
        # --- damaged images ------------------------------------------------------------
        "truncated.png": lambda: png[: len(png) // 2],
        "truncated.jpg": lambda: jpg[: len(jpg) // 2],
        "truncated.gif": lambda: gif[: len(gif) // 2],
        "truncated.webp": lambda: webp[: len(webp) // 2],
        "truncated.tif": lambda: tif[: len(tif) // 2],
        "png_signature_only.png": lambda: PNG_SIGNATURE,
        "jpeg_soi_only.jpg": lambda: b"\xff\xd8\xff",
        "png_bad_crc.png": lambda: png[:29] + bytes([png[29] ^ 0xFF]) + png[30:],
        "zero_width.png": lambda: declared_only_png(0, 10),
        # --- too large -----------------------------------------------------------------
        "bomb_100000x100000.png": lambda: declared_only_png(100_000, 100_000),
        "bomb_8000x6000.png": lambda: declared_only_png(8000, 6000),
        "huge_20000x20000.png": lambda: huge_1bit_png(20_000, 20_000),
        "bomb_65000x65000.jpg": lambda: patch_jpeg_size(jpg, 65_000, 65_000),
        "bomb_50000x50000.bmp": lambda: bmp_header_only(50_000, 50_000),
        # --- unusual but valid ---------------------------------------------------------
        "tiny_1x1.png": lambda: encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"),
        "thin_1x300.png": lambda: encode(gradient_rgb(1, 300), "PNG"),
        "thin_300x1.jpg": lambda: encode(gradient_rgb(300, 1), "JPEG"),
        "thin_1x5000.png": lambda: encode(Image.new("L", (1, 5000), 128), "PNG"),
        "one_bit.png": lambda: encode(Image.new("1", (9, 7), 1), "PNG"),
        "gray16.png": lambda: encode(Image.fromarray(ramp16), "PNG"),
        "gray16_big_endian.tif": lambda: encode(
            Image.frombytes("I;16B", (32, 16), ramp16.astype(">u2").tobytes()), "TIFF"
        ),
        "int32.tif": lambda: encode(Image.fromarray((x * 100_000 - 1_000_000).astype(np.int32)), "TIFF"),
        "rgb48.png": lambda: rgb48_png(8, 6),
        "float32.tif": lambda: float_tiff(np.linspace(0, 1, 24 * 16).reshape(16, 24)),
        "float32_wide_range.tif": lambda: float_tiff(np.linspace(-5.0, 100.0, 24 * 16).reshape(16, 24)),
        "float32_nan_inf.tif": lambda: float_tiff(nan_arr),
        "float32_all_nan.tif": lambda: float_tiff(np.full((4, 4), np.nan)),
        "cmyk.jpg": lambda: encode(Image.new("CMYK", (16, 12), (0, 255, 255, 0)), "JPEG"),
        "cmyk.tif": lambda: encode(Image.new("CMYK", (16, 12), (255, 0, 255, 0)), "TIFF"),
        "palette.png": lambda: encode(palette, "PNG"),
        "palette_transparent.png": lambda: encode(palette, "PNG", transparency=0),
        "palette.bmp": lambda: encode(palette, "BMP"),
        "la.png": lambda: encode(la, "PNG"),
        "rgba.png": lambda: encode(rgba, "PNG"),
        "rgba.webp": lambda: encode(rgba, "WEBP", lossless=True),
        "rgb.bmp": lambda: encode(gradient_rgb(20, 10), "BMP"),
        "animated.gif": lambda: animated("GIF"),
        "animated.webp": lambda: animated("WEBP"),
        "multipage.tif": multipage_tiff,
        "exif_rotated.jpg": lambda: exif_rotated_jpeg(6),
        "exif_bad_orientation.jpg": lambda: exif_rotated_jpeg(42),
        "exif_garbage.jpg": lambda: encode(gradient_rgb(8, 8), "JPEG", exif=b"Exif\x00\x00junk"),
    }
    return builders


def corpus_names() -> list[str]:
    """File names :func:`make_corpus` writes, in a stable order."""
    return list(_corpus_builders())


def make_corpus(out_dir: str | Path) -> dict[str, Path]:
    """Write every corpus file into ``out_dir`` (created if needed); return ``{name: path}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, build in _corpus_builders().items():
        path = out / name
        path.write_bytes(build())
        paths[name] = path
    return paths


def main(argv: list[str]) -> int:
    """Command-line entry point: ``make_bad.py OUT_DIR``."""
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUT_DIR", file=sys.stderr)
        return 2
    for name, path in make_corpus(argv[1]).items():
        print(f"{path.stat().st_size:>10}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
