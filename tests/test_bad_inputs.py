"""Hostile and unusual inputs: the loader returns a sane tensor or raises ImageLoadError.

The corpus is written by tests/data/make_bad.py into tests/data/bad/ (git-ignored: nothing
binary is committed).
"""

from __future__ import annotations

import importlib.util
import io
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from diffusion_core.media.decode import ImageLoadError, LoadedImage, load_image


def _import_make_bad() -> ModuleType:
    path = Path(__file__).parent / "data" / "make_bad.py"
    spec = importlib.util.spec_from_file_location("make_bad", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_bad", module)
    spec.loader.exec_module(module)
    return module


make_bad = _import_make_bad()

MAX_SIDE = 256

#: Files that must be rejected (everything else in the corpus must load).
MUST_FAIL = {
    "zero_bytes.png",
    "text.png",
    "html.jpg",
    "drawing_svg.png",
    "document.pdf",
    "archive.zip",
    "archive_renamed.png",
    "random_garbage.bin",
    "truncated.png",
    "truncated.jpg",
    "truncated.gif",
    "truncated.webp",
    "truncated.tif",
    "png_signature_only.png",
    "jpeg_soi_only.jpg",
    "png_bad_crc.png",
    "zero_width.png",
    "bomb_100000x100000.png",
    "bomb_8000x6000.png",
    "huge_20000x20000.png",
    "bomb_65000x65000.jpg",
    "bomb_50000x50000.bmp",
    "float32_all_nan.tif",
}

#: Expected words in the message of some rejections.
MESSAGE_WORDS = {
    "zero_bytes.png": "empty",
    "text.png": "text",
    "html.jpg": "HTML",
    "archive.zip": "ZIP",
    "archive_renamed.png": "ZIP",
    "truncated.png": "truncated",
    "truncated.jpg": "truncated",
    "huge_20000x20000.png": "20000×20000",
    "bomb_100000x100000.png": "too large",
    "bomb_8000x6000.png": "too large",
    "bomb_65000x65000.jpg": "too large",
    "bomb_50000x50000.bmp": "too large",
}

#: Expected (channels, height, width) for some files that must load.
SHAPES = {
    "tiny_1x1.png": (3, 1, 1),
    "thin_1x300.png": (3, MAX_SIDE, 1),
    "thin_300x1.jpg": (3, 1, MAX_SIDE),
    "thin_1x5000.png": (1, MAX_SIDE, 1),
    "one_bit.png": (1, 7, 9),
    "gray16.png": (1, 16, 32),
    "gray16_big_endian.tif": (1, 16, 32),
    "int32.tif": (1, 16, 32),
    "rgb48.png": (3, 6, 8),
    "float32.tif": (1, 16, 24),
    "float32_nan_inf.tif": (1, 16, 16),
    "cmyk.jpg": (3, 12, 16),
    "cmyk.tif": (3, 12, 16),
    "palette_transparent.png": (3, 10, 12),
    "la.png": (1, 10, 10),
    "rgba.png": (3, 10, 10),
    "rgba.webp": (3, 10, 10),
    "animated.gif": (3, 12, 16),
    "animated.webp": (3, 12, 16),
    "multipage.tif": (1, 8, 10),
    "exif_rotated.jpg": (3, 40, 20),
    "exif_bad_orientation.jpg": (3, 20, 40),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # written by the script into tests/data/bad/ (git-ignored), as bench/bad_inputs.py does
    return make_bad.make_corpus(Path(__file__).parent / "data" / "bad")


def assert_valid(result: LoadedImage, max_side: int | None = MAX_SIDE) -> None:
    t = result.tensor
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert t.ndim == 3 and t.shape[0] in (1, 3)
    assert t.shape[1] >= 1 and t.shape[2] >= 1
    if max_side is not None:
        assert max(t.shape[1:]) <= max_side
    assert bool(torch.isfinite(t).all())
    assert float(t.min()) >= -1.0 and float(t.max()) <= 1.0
    assert all(isinstance(n, str) and n for n in result.notes)


def assert_good_message(error: ImageLoadError) -> None:
    message = str(error)
    assert message.strip()
    assert len(message) < 200
    assert "\n" not in message
    assert message.endswith(".")


def load_or_error(source: object, **kwargs: object) -> LoadedImage | ImageLoadError:
    """Run load_image; any exception other than ImageLoadError fails the test."""
    try:
        return load_image(source, **kwargs)  # type: ignore[arg-type]
    except ImageLoadError as exc:
        assert_good_message(exc)
        return exc


def test_corpus_is_complete(corpus: dict[str, Path]) -> None:
    assert set(corpus) == set(make_bad.corpus_names())
    assert MUST_FAIL <= set(corpus) and set(SHAPES) <= set(corpus)
    assert all(path.is_file() for path in corpus.values())
    assert corpus["huge_20000x20000.png"].stat().st_size < 200_000  # generated cheaply


@pytest.mark.parametrize("name", make_bad.corpus_names())
def test_corpus_file(name: str, corpus: dict[str, Path]) -> None:
    outcome = load_or_error(corpus[name], max_side=MAX_SIDE)
    if name in MUST_FAIL:
        assert isinstance(outcome, ImageLoadError), f"{name} should be rejected"
        if name in MESSAGE_WORDS:
            assert MESSAGE_WORDS[name] in str(outcome)
    else:
        assert isinstance(outcome, LoadedImage), f"{name} should load: {outcome}"
        assert_valid(outcome)
        if name in SHAPES:
            assert tuple(outcome.tensor.shape) == SHAPES[name]


@pytest.mark.parametrize("name", make_bad.corpus_names())
def test_corpus_file_from_bytes_all_modes(name: str, corpus: dict[str, Path]) -> None:
    data = corpus[name].read_bytes()
    for mode, channels in (("rgb", 3), ("gray", 1)):
        outcome = load_or_error(io.BytesIO(data), max_side=None, mode=mode)
        assert isinstance(outcome, ImageLoadError) == (name in MUST_FAIL)
        if isinstance(outcome, LoadedImage):
            assert_valid(outcome, max_side=None)
            assert outcome.tensor.shape[0] == channels


@pytest.mark.parametrize(
    "name",
    [
        "huge_20000x20000.png",
        "bomb_100000x100000.png",
        "bomb_8000x6000.png",
        "bomb_65000x65000.jpg",
    ],
)
def test_huge_images_rejected_before_decoding(
    name: str, corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = corpus[name].read_bytes()
    decoded = []
    original = ImageFile.ImageFile.load

    def spy_load(self: ImageFile.ImageFile):
        decoded.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ImageLoadError, match="too large"):
            load_image(data, max_side=None)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert decoded == [], "pixel data must not be decoded"
    assert elapsed < 2.0
    assert peak < 20 * 1024 * 1024  # Python-side allocations stay small
    assert rss_growth_mib < 100  # decoding 20000×20000 would need >= 400 MiB


# ------------------------------------------------------------------------------------------
# property tests
# ------------------------------------------------------------------------------------------


def _seed_files() -> list[bytes]:
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    out = []
    for fmt, im, params in [
        ("PNG", rgb, {}),
        ("JPEG", rgb, {}),
        ("GIF", rgb.convert("P"), {}),
        ("WEBP", rgb, {}),
        ("BMP", rgb, {}),
        ("TIFF", rgb, {}),
        ("TIFF", Image.fromarray(rng.random((6, 5), dtype=np.float32)), {}),
        ("PNG", Image.fromarray(rng.integers(0, 65536, (6, 5), dtype=np.uint16)), {}),
    ]:
        buf = io.BytesIO()
        im.save(buf, fmt, **params)
        out.append(buf.getvalue())
    return out


SEED_FILES = _seed_files()
MAGIC_PREFIXES = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"PK\x03\x04",
    b"<html>",
]

FUZZ_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ_SETTINGS
@given(prefix=st.sampled_from(MAGIC_PREFIXES), body=st.binary(max_size=512))
def test_random_bytes_only_raise_image_load_error(prefix: bytes, body: bytes) -> None:
    outcome = load_or_error(prefix + body, max_side=64)
    if isinstance(outcome, LoadedImage):
        assert_valid(outcome, max_side=64)


@FUZZ_SETTINGS
@given(
    seed=st.sampled_from(range(len(SEED_FILES))),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=6),
)
def test_mutated_files_only_raise_image_load_error(
    seed: int, cut: float, flips: list[tuple[float, int]]
) -> None:
    data = bytearray(SEED_FILES[seed])
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    if cut < 0.5:  # truncate in half the cases
        data = data[: int(cut * 2 * len(data))]
    outcome = load_or_error(bytes(data), max_side=64)
    if isinstance(outcome, LoadedImage):
        assert_valid(outcome, max_side=64)


#: Formats that store each mode natively (so the mode survives the round trip).
FORMATS_FOR_MODE = {
    "L": ["PNG", "JPEG", "BMP", "TIFF", "GIF"],
    "LA": ["PNG", "TIFF"],
    "RGB": ["PNG", "JPEG", "WEBP", "BMP", "TIFF"],
    "RGBA": ["PNG", "WEBP", "TIFF"],
    "P": ["PNG", "BMP", "TIFF", "GIF"],
    "I;16": ["PNG", "TIFF"],
    "F": ["TIFF"],
    "CMYK": ["JPEG", "TIFF"],
}


@st.composite
def random_images(
    draw: st.DrawFn,
) -> tuple[bytes, str, str, int, int, bool, np.ndarray | None]:
    """(encoded, mode, fmt, width, height, expect_gray, exact_expected_01_or_None)."""
    mode = draw(st.sampled_from(sorted(FORMATS_FOR_MODE)))
    fmt = draw(st.sampled_from(FORMATS_FOR_MODE[mode]))
    width, height = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    flat = draw(st.booleans())  # constant images are a classic edge case
    shape = (height, width)

    def rand(dtype: type, high: int, channels: int = 0) -> np.ndarray:
        full = shape + ((channels,) if channels else ())
        if flat:
            return np.full(full, rng.integers(0, high), dtype=dtype)
        return rng.integers(0, high, full, dtype=dtype)

    exact: np.ndarray | None = None
    expect_gray = mode in ("L", "LA", "I;16", "F")
    params: dict[str, object] = {}
    if mode == "L":
        arr = rand(np.uint8, 256)
        im = Image.fromarray(arr)
        exact = arr / 255.0
    elif mode == "RGB":
        arr = rand(np.uint8, 256, 3)
        im = Image.fromarray(arr)
        exact = arr / 255.0
    elif mode in ("LA", "RGBA", "CMYK"):
        im = Image.frombytes(mode, (width, height), rand(np.uint8, 256, len(mode)).tobytes())
    elif mode == "I;16":
        arr = rand(np.uint16, 65536)
        im = Image.fromarray(arr)
        exact = arr / 65535.0
    elif mode == "F":
        scale = draw(st.sampled_from([1.0, 1000.0]))
        arr = (rng.random(shape, dtype=np.float32) * scale).astype(np.float32)
        if flat:
            arr[:] = arr.flat[0]
        im = Image.fromarray(arr)
        if scale == 1.0:
            exact = arr.astype(np.float64)
    else:  # "P"
        gray_palette = draw(st.booleans())
        levels = rng.integers(0, 256, 256, dtype=np.uint8)
        palette = (
            np.repeat(levels[:, None], 3, axis=1)
            if gray_palette
            else rng.integers(0, 256, (256, 3), dtype=np.uint8)
        )
        indices = rand(np.uint8, 256)
        im = Image.frombytes("P", (width, height), indices.tobytes())
        im.putpalette(palette.flatten().tolist())
        transparent = None
        if fmt in ("PNG", "GIF") and draw(st.booleans()):
            transparent = int(indices.flat[0])
            params["transparency"] = transparent
        used = [int(i) for i in np.unique(indices) if int(i) != transparent]
        expect_gray = all(len(set(palette[i].tolist())) == 1 for i in used)
    if fmt == "JPEG":
        params["quality"] = 90
        exact = None
    if fmt == "WEBP":
        params["lossless"] = draw(st.booleans())
        if not params["lossless"]:
            exact = None
    if fmt == "GIF":
        exact = None  # GIF stores a palette; values are checked loosely
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue(), mode, fmt, width, height, expect_gray, exact


@FUZZ_SETTINGS
@given(case=random_images(), max_side=st.sampled_from([None, 8, 32, 512]))
def test_random_valid_images_load(
    case: tuple[bytes, str, str, int, int, bool, np.ndarray | None],
    max_side: int | None,
) -> None:
    data, mode, fmt, width, height, expect_gray, exact = case
    result = load_image(data, max_side=max_side)
    assert_valid(result, max_side=max_side)
    assert result.format == fmt
    assert result.original_size == (width, height)
    assert result.tensor.shape[0] == (1 if expect_gray else 3), (mode, fmt)
    h, w = result.tensor.shape[1:]
    if max_side is None or max(width, height) <= max_side:
        assert (w, h) == (width, height) and not result.was_resized
        if exact is not None:
            got = result.tensor.double().numpy()
            want = exact * 2.0 - 1.0
            want = want.transpose(2, 0, 1) if want.ndim == 3 else want[None]
            assert np.allclose(got, want, atol=1e-5), (mode, fmt)
    else:
        assert max(w, h) == max_side and result.was_resized
        scale = max_side / max(width, height)
        assert abs(w - width * scale) <= 1 and abs(h - height * scale) <= 1
