"""Tests for diffusion_core.media.decode (formats, modes, orientation, limits), .convert (tensor
helpers) and .samples (the built-in pictures)."""

from __future__ import annotations

import dataclasses
import io
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from diffusion_core.media import decode, samples
from diffusion_core.media.convert import from_uint8, tensor_to_float01, to_pil, to_uint8
from diffusion_core.media.decode import ImageLoadError, LoadedImage, load_image
from diffusion_core.media.samples import list_samples, load_sample, sample_images

# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def gradient(width: int = 40, height: int = 30) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), np.full_like(x, 77)], axis=-1).astype(
        np.uint8
    )


def expected_tensor(arr: np.ndarray) -> torch.Tensor:
    return from_uint8(arr)


def check_valid(result: LoadedImage) -> None:
    t = result.tensor
    assert isinstance(t, torch.Tensor)
    assert t.dtype == torch.float32
    assert t.ndim == 3 and t.shape[0] in (1, 3)
    assert bool(torch.isfinite(t).all())
    assert float(t.min()) >= -1.0 and float(t.max()) <= 1.0


def pixel(result: LoadedImage, row: int, col: int) -> list[float]:
    return [round(float(v), 3) for v in result.tensor[:, row, col]]


# ------------------------------------------------------------------------------------------
# formats and sources
# ------------------------------------------------------------------------------------------

LOSSLESS = {"PNG": {}, "BMP": {}, "TIFF": {}, "WEBP": {"lossless": True}}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_each_format_round_trips(fmt: str) -> None:
    arr = gradient()
    params = LOSSLESS.get(fmt, {"quality": 95})
    result = load_image(encode(Image.fromarray(arr), fmt, **params))
    check_valid(result)
    assert result.tensor.shape == (3, 30, 40)
    assert result.format == fmt
    assert result.original_size == (40, 30)
    assert result.was_resized is False
    assert result.size == (40, 30) and result.channels == 3 and not result.is_gray
    err = (result.tensor - expected_tensor(arr)).abs()
    if fmt == "JPEG":
        assert float(err.mean()) < 0.03
    else:
        assert float(err.max()) < 1e-6


def test_sources_bytes_path_and_file_objects(tmp_path: Path) -> None:
    data = encode(Image.fromarray(gradient()), "PNG")
    path = tmp_path / "img.png"
    path.write_bytes(data)

    class ReadOnly:  # has read() but no getvalue()
        def __init__(self, payload: bytes) -> None:
            self._buf = io.BytesIO(payload)

        def read(self, n: int = -1) -> bytes:
            return self._buf.read(n)

    class Uploaded(io.BytesIO):  # like Streamlit's UploadedFile: a BytesIO subclass
        pass

    uploaded = Uploaded(data)
    uploaded.seek(0, io.SEEK_END)  # getvalue() must not depend on the position
    for source in (
        data,
        bytearray(data),
        memoryview(data),
        str(path),
        path,
        io.BytesIO(data),
        ReadOnly(data),
        uploaded,
    ):
        result = load_image(source)
        assert result.tensor.shape == (3, 30, 40)


def test_missing_file_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError):
        load_image(tmp_path)  # a directory
    with pytest.raises(TypeError):
        load_image(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        load_image(io.StringIO("text mode"))
    data = encode(Image.new("L", (4, 4)), "PNG")
    with pytest.raises(ValueError, match="mode"):
        load_image(data, mode="cmyk")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_side"):
        load_image(data, max_side=0)


def test_loaded_image_is_frozen() -> None:
    result = load_image(encode(Image.new("L", (4, 4)), "PNG"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.format = "GIF"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# orientation, modes, transparency
# ------------------------------------------------------------------------------------------


def test_exif_orientation_6_rotates_clockwise() -> None:
    arr = np.full((20, 40, 3), 255, np.uint8)  # landscape, red block at stored top-left
    arr[:8, :8] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(arr), "JPEG", quality=95, exif=exif)

    result = load_image(data)
    assert result.tensor.shape == (3, 40, 20)  # portrait now
    assert result.original_size == (20, 40)
    assert "Rotated according to EXIF orientation" in result.notes
    r, g, b = pixel(result, 2, 17)  # top-right corner is red
    assert r > 0.8 and g < -0.8 and b < -0.8
    assert min(pixel(result, 2, 2)) > 0.8  # top-left is white
    assert min(pixel(result, 37, 17)) > 0.8  # bottom-right is white


def test_exif_orientation_with_resize_uses_displayed_size() -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    data = encode(Image.fromarray(gradient(300, 100)), "PNG", exif=exif)
    result = load_image(data, max_side=60)
    assert result.original_size == (100, 300)
    assert result.tensor.shape == (3, 60, 20)


def test_gray_stays_gray_in_auto_mode() -> None:
    arr = (np.arange(12 * 10) % 256).astype(np.uint8).reshape(10, 12)
    data = encode(Image.fromarray(arr), "PNG")
    gray = load_image(data)
    assert gray.tensor.shape == (1, 10, 12) and gray.is_gray
    assert torch.allclose(gray.tensor, from_uint8(arr))
    rgb = load_image(data, mode="rgb")
    assert rgb.tensor.shape == (3, 10, 12)
    assert torch.equal(rgb.tensor[0], rgb.tensor[1]) and torch.equal(rgb.tensor[1], rgb.tensor[2])


def test_rgb_to_gray_mode_uses_luminance() -> None:
    data = encode(Image.new("RGB", (5, 5), (255, 0, 0)), "PNG")
    result = load_image(data, mode="gray")
    assert result.tensor.shape == (1, 5, 5)
    expected = round(255 * 299 / 1000) / 255 * 2 - 1  # ITU-R 601 luma of pure red
    assert abs(float(result.tensor[0, 0, 0]) - expected) < 1.5 / 255


def test_gray_palette_gif_is_gray() -> None:
    data = encode(Image.fromarray(np.tile(np.arange(0, 256, 16, np.uint8), (4, 1))), "GIF")
    result = load_image(data)
    assert result.is_gray and result.tensor.shape == (1, 4, 16)


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_flattened_onto_white(mode: str) -> None:
    color = 0 if mode == "LA" else (0, 0, 0)
    im = Image.new(mode, (3, 1), color + (0,) if mode == "RGBA" else (0, 0))
    im.putpixel((1, 0), (0, 255) if mode == "LA" else (0, 0, 0, 255))
    im.putpixel((2, 0), (0, 128) if mode == "LA" else (0, 0, 0, 128))
    result = load_image(encode(im, "PNG"))
    assert result.tensor.shape[0] == (1 if mode == "LA" else 3)
    assert "Transparency flattened onto white" in result.notes
    row = result.tensor[:, 0, :]
    assert torch.allclose(row[:, 0], torch.ones(row.shape[0]))  # transparent -> white
    assert torch.allclose(row[:, 1], -torch.ones(row.shape[0]))  # opaque black stays black
    assert bool((row[:, 2].abs() < 0.02).all())  # half transparent black -> mid gray


def test_opaque_alpha_is_dropped_without_note() -> None:
    result = load_image(encode(Image.new("RGBA", (4, 4), (10, 20, 30, 255)), "PNG"))
    assert result.tensor.shape == (3, 4, 4)
    assert not any("Transparency" in n for n in result.notes)


def test_palette_with_transparency() -> None:
    im = Image.new("P", (4, 2), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    im.paste(1, (2, 0, 4, 2))
    result = load_image(encode(im, "PNG", transparency=0))
    assert result.tensor.shape == (3, 2, 4)
    assert pixel(result, 0, 0) == [1.0, 1.0, 1.0]  # transparent index -> white
    assert pixel(result, 0, 3) == [1.0, -1.0, -1.0]  # red stays red
    assert "Transparency flattened onto white" in result.notes


def test_one_bit_image() -> None:
    im = Image.new("1", (4, 3), 0)
    im.putpixel((0, 0), 1)
    result = load_image(encode(im, "PNG"))
    assert result.tensor.shape == (1, 3, 4)
    assert pixel(result, 0, 0) == [1.0] and pixel(result, 2, 3) == [-1.0]


# ------------------------------------------------------------------------------------------
# high bit depth, float, CMYK
# ------------------------------------------------------------------------------------------


def test_16bit_png_scaled_by_65535() -> None:
    arr = np.array([[0, 65535, 32768, 257]], dtype=np.uint16)
    result = load_image(encode(Image.fromarray(arr), "PNG"))
    assert result.tensor.shape == (1, 1, 4)
    values = result.tensor[0, 0]
    assert float(values[0]) == -1.0
    assert float(values[1]) == 1.0
    assert abs(float(values[2]) - (32768 / 65535 * 2 - 1)) < 1e-6
    assert abs(float(values[3]) - (257 / 65535 * 2 - 1)) < 1e-6
    assert any("16-bit" in n for n in result.notes)


def test_16bit_big_endian_tiff() -> None:
    arr = np.array([[0, 1000, 65535]], dtype=np.uint16)
    im = Image.frombytes("I;16B", (3, 1), arr.astype(">u2").tobytes())
    result = load_image(encode(im, "TIFF"))
    assert result.tensor[0, 0].tolist() == pytest.approx([-1.0, 1000 / 65535 * 2 - 1, 1.0])


def test_32bit_int_tiff_is_stretched() -> None:
    arr = np.array([[-100_000, 0, 300_000]], dtype=np.int32)
    result = load_image(encode(Image.fromarray(arr), "TIFF"))
    assert result.tensor[0, 0].tolist() == pytest.approx([-1.0, -0.5, 1.0])
    assert any("32-bit integer" in n for n in result.notes)


def test_float_tiff_in_unit_range_is_kept() -> None:
    arr = np.array([[0.0, 0.25, 1.0]], dtype=np.float32)
    result = load_image(encode(Image.fromarray(arr), "TIFF"))
    assert result.tensor[0, 0].tolist() == pytest.approx([-1.0, -0.5, 1.0])


def test_float_tiff_outside_unit_range_is_normalised() -> None:
    arr = np.array([[-3.0, 7.0, 2.0]], dtype=np.float32)
    result = load_image(encode(Image.fromarray(arr), "TIFF"))
    assert result.tensor[0, 0].tolist() == pytest.approx([-1.0, 1.0, 0.0])
    assert any("stretched" in n for n in result.notes)


def test_float_tiff_nan_and_inf_are_zeroed_with_note() -> None:
    arr = np.array([[np.nan, 0.5, np.inf, 1.0]], dtype=np.float32)
    result = load_image(encode(Image.fromarray(arr), "TIFF"))
    check_valid(result)
    assert result.tensor[0, 0].tolist() == pytest.approx([-1.0, 0.0, -1.0, 1.0])
    assert any("NaN" in n for n in result.notes)
    with pytest.raises(ImageLoadError, match="NaN"):
        load_image(encode(Image.fromarray(np.full((2, 2), np.nan, np.float32)), "TIFF"))


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (16, 8), (255, 0, 0, 0)), "JPEG", quality=95)  # cyan
    result = load_image(data)
    assert result.tensor.shape == (3, 8, 16)
    r, g, b = pixel(result, 4, 8)
    assert r < -0.9 and g > 0.9 and b > 0.9
    assert any("CMYK" in n for n in result.notes)


# ------------------------------------------------------------------------------------------
# animation / pages
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    extra = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, **extra)
    result = load_image(data)
    assert result.tensor.shape == (3, 6, 8)
    assert pixel(result, 3, 4) == [1.0, -1.0, -1.0]
    assert "Animated file: first frame used" in result.notes


def test_multipage_tiff_first_page() -> None:
    pages = [Image.new("L", (5, 4), 0), Image.new("L", (5, 4), 255)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    result = load_image(data)
    assert result.tensor.shape == (1, 4, 5)
    assert float(result.tensor.max()) == -1.0
    assert any("first page" in n for n in result.notes)


# ------------------------------------------------------------------------------------------
# errors and limits
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"just some words, definitely not pixels\n", "text"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "web page"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "damaged"),
        (bytes(range(256)) * 4, "not an image we can read"),
    ],
)
def test_unreadable_inputs_raise_with_message(data: bytes, fragment: str) -> None:
    with pytest.raises(ImageLoadError) as info:
        load_image(data)
    assert fragment in str(info.value)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(fmt: str) -> None:
    rng = np.random.default_rng(1)
    data = encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), fmt)
    with pytest.raises(ImageLoadError, match="damaged or truncated"):
        load_image(data[: len(data) // 2])


def test_image_load_error_is_value_error() -> None:
    assert issubclass(ImageLoadError, ValueError)


def _bomb_png(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("size", [(100_000, 100_000), (8_000, 6_000)])
def test_decompression_bomb_rejected_quickly_without_decoding(
    size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = ImageFile.ImageFile.load

    def counting_load(self: ImageFile.ImageFile):
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    start = time.perf_counter()
    with pytest.raises(ImageLoadError, match="too large") as info:
        load_image(_bomb_png(*size))
    assert time.perf_counter() - start < 1.0
    assert calls == []
    assert f"{size[0]}×{size[1]}" in str(info.value)


def test_pillow_guard_uses_module_limit() -> None:
    assert Image.MAX_IMAGE_PIXELS == decode.MAX_IMAGE_PIXELS


def test_declared_size_checked_against_module_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decode, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match="40×40"):
        load_image(encode(Image.new("L", (40, 40)), "PNG"))
    load_image(encode(Image.new("L", (30, 30)), "PNG"))


def test_byte_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = encode(Image.fromarray(gradient()), "PNG")
    monkeypatch.setattr(decode, "MAX_INPUT_BYTES", len(data) - 1)
    path = tmp_path / "big.png"
    path.write_bytes(data)
    for source in (data, path, io.BytesIO(data)):
        with pytest.raises(ImageLoadError, match="too large"):
            load_image(source)


# ------------------------------------------------------------------------------------------
# resizing
# ------------------------------------------------------------------------------------------


def test_resize_bound_and_aspect() -> None:
    result = load_image(encode(Image.fromarray(gradient(300, 100)), "PNG"), max_side=64)
    assert result.tensor.shape == (3, 21, 64)
    assert result.was_resized and result.original_size == (300, 100)
    assert "Resized from 300×100 to 64×21" in result.notes
    check_valid(result)


def test_never_upscales_and_none_keeps_size() -> None:
    small = encode(Image.fromarray(gradient(10, 5)), "PNG")
    result = load_image(small, max_side=512)
    assert result.tensor.shape == (3, 5, 10) and not result.was_resized
    big = encode(Image.fromarray(gradient(700, 20)), "PNG")
    assert load_image(big, max_side=None).tensor.shape == (3, 20, 700)


@pytest.mark.parametrize(("w", "h"), [(1, 1), (1, 2000), (2000, 1)])
def test_thin_images(w: int, h: int) -> None:
    result = load_image(encode(Image.new("RGB", (w, h), (0, 128, 255)), "PNG"), max_side=256)
    check_valid(result)
    assert max(result.size) == min(max(w, h), 256) and min(result.size) == 1


def test_large_jpeg_draft_decoding_matches_full_decode() -> None:
    arr = np.asarray(Image.fromarray(gradient(64, 32)).resize((2048, 1024), Image.BILINEAR))
    data = encode(Image.fromarray(arr), "JPEG", quality=92)
    fast = load_image(data, max_side=256)
    assert fast.tensor.shape == (3, 128, 256) and fast.was_resized
    full = load_image(data, max_side=None)
    reference = to_pil(full.tensor).resize((256, 128), Image.LANCZOS)
    diff = (fast.tensor - from_uint8(np.asarray(reference))).abs().mean()
    assert float(diff) < 0.02


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def test_uint8_helpers_round_trip() -> None:
    rgb = gradient(7, 5)
    t = from_uint8(rgb)
    assert t.shape == (3, 5, 7) and t.dtype == torch.float32
    assert np.array_equal(to_uint8(t), rgb)
    gray = rgb[:, :, 0]
    g = from_uint8(gray)
    assert g.shape == (1, 5, 7)
    assert np.array_equal(to_uint8(g), gray) and to_uint8(g).shape == (5, 7)
    assert np.array_equal(to_uint8(g[0]), gray)  # (H, W) accepted
    assert np.array_equal(to_uint8(t[None]), rgb)  # (1, C, H, W) accepted
    assert to_pil(t).mode == "RGB" and to_pil(g).mode == "L"
    assert np.array_equal(np.asarray(to_pil(t)), rgb)


def test_helpers_clamp_and_validate() -> None:
    t = torch.tensor([[[-3.0, 0.0, 5.0, float("nan")]]])
    assert tensor_to_float01(t[:, :, :3]).tolist() == [[[0.0, 0.5, 1.0]]]
    assert to_uint8(t).tolist() == [[0, 128, 255, 0]]
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 1, 3] = 255
    assert from_uint8(rgba)[:, 0, :].tolist() == [[1.0, -1.0]] * 3
    with pytest.raises(TypeError):
        from_uint8(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError):
        from_uint8(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError):
        to_uint8(torch.zeros(2, 4, 4))


# ------------------------------------------------------------------------------------------
# samples (offline)
# ------------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_samples_listed() -> None:
    names = list_samples()
    assert {"astronaut", "camera", "cat", "retina"} <= set(names)
    assert set(sample_images()) == set(names)


@pytest.mark.usefixtures("no_network")
def test_every_sample_loads_offline() -> None:
    for name in list_samples():
        result = load_sample(name, max_side=128)
        check_valid(result)
        assert max(result.size) <= 128
        assert result.is_gray == samples.SAMPLES[name].gray, name


@pytest.mark.usefixtures("no_network")
def test_sample_loaders_and_modes() -> None:
    camera = sample_images()["camera"](max_side=64)
    assert camera.tensor.shape == (1, 64, 64)
    assert load_sample("camera", max_side=64, mode="rgb").tensor.shape == (3, 64, 64)
    astronaut = load_sample("astronaut", max_side=None)
    assert astronaut.tensor.shape == (3, 512, 512)
    with pytest.raises(KeyError):
        load_sample("no-such-sample")
