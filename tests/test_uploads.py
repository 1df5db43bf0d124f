"""Safe intake of training pictures: hostile zips and loose files."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusion_core.media.decode import load_image
from diffusion_core.media.uploads import (
    LABELS_FILE,
    UploadError,
    UploadLimits,
    extract_zip,
    ingest,
    list_images,
    read_classes,
)


def png_bytes(seed: int = 0, size: int = 24, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(buf, "PNG")
    return buf.getvalue()


def make_zip(entries: list[tuple[str, bytes]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buf.getvalue()


def all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture()
def sandbox(tmp_path):
    """target/ is where pictures may go; everything else under tmp_path must stay empty."""
    target = tmp_path / "deep" / "er" / "target"
    target.mkdir(parents=True)
    return tmp_path, target


def test_malicious_zip_writes_only_generated_pngs_inside_the_target(sandbox):
    root, target = sandbox
    bomb = b"\0" * (3 * 1024 * 1024)  # compresses to a few kB
    data = make_zip([
        ("../../evil.png", png_bytes(1)),
        ("/abs/olute.png", png_bytes(2)),
        ("..\\..\\win.png", png_bytes(3)),
        ("ok/nested/fine.jpg", png_bytes(4)),  # a PNG with a .jpg name: content decides
        ("bomb.bmp", bomb),
        ("notes.txt", b"hello"),
        ("fake.png", b"this is not a picture"),
        ("__MACOSX/._fine.jpg", b"\0\5\26\7"),
    ])
    limits = UploadLimits(max_file_bytes=1024 * 1024)
    s = extract_zip(data, target, limits)
    assert s.accepted == 4 and not s.errors
    # a picture in a folder has that folder's name as its class, recorded beside it
    labels = target / LABELS_FILE
    assert s.classes == {"nested": 1, "abs": 1} and len(read_classes(target)) == 2
    written = all_files(root) - {labels}
    assert written == set(s.files) == set(list_images(target))
    assert all(p.parent == target and p.name.startswith("img_") and p.suffix == ".png"
               for p in written)
    for p in written:  # really PNGs, readable by the one validated loader
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        load_image(p)
    reasons = dict(s.skipped)
    assert "too large" in reasons["bomb.bmp"]
    assert "not a picture" in reasons["notes.txt"]
    assert reasons["fake.png"]  # ImageLoadError's sentence
    assert "system file" in reasons["._fine.jpg"]
    assert not (root / "evil.png").exists() and not Path("/abs/olute.png").exists()


def test_declared_total_over_the_limit_refuses_the_whole_zip(sandbox):
    root, target = sandbox
    data = make_zip([(f"z{i}.png", b"\0" * (600 * 1024)) for i in range(4)])
    with pytest.raises(UploadError, match="unpack to"):
        extract_zip(data, target, UploadLimits(max_total_bytes=2 * 1024 * 1024))
    assert all_files(root) == set()


def test_a_member_that_lies_about_its_size_is_cut_off_while_streaming(sandbox):
    root, target = sandbox
    real = png_bytes(5, size=64)
    data = bytearray(make_zip([("liar.png", real)]))
    # rewrite both headers to claim the member unpacks to 10 bytes only
    lh = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, lh + 22, 10)
    cd = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 10)
    s = extract_zip(bytes(data), target, UploadLimits(max_file_bytes=1000))
    assert s.accepted == 0 and "liar.png" in dict(s.skipped)
    assert all_files(root) == set()


def test_not_a_zip_and_too_many_members(sandbox):
    root, target = sandbox
    with pytest.raises(UploadError, match="not a readable zip"):
        extract_zip(b"PK\x03\x04 definitely broken", target)
    many = make_zip([(f"{i}.txt", b"x") for i in range(12)], zipfile.ZIP_STORED)
    with pytest.raises(UploadError, match="entries"):
        extract_zip(many, target, UploadLimits(max_members=10))
    with pytest.raises(UploadError, match="too large"):
        extract_zip(many, target, UploadLimits(max_zip_bytes=100))
    assert all_files(root) == set()


def test_loose_files_and_a_zip_together(sandbox):
    root, target = sandbox
    zipped = make_zip([("a.png", png_bytes(10)), ("../b.png", png_bytes(11))])
    files = [
        ("one.png", png_bytes(20)),
        ("gray.png", png_bytes(21, mode="L")),
        ("speck.png", png_bytes(22, size=4)),
        ("../../two.webp", b"RIFF....WEBPVP8 broken"),
        ("readme.md", b"# hi"),
        ("pics.zip", zipped),
        ("bad.zip", b"nope"),
    ]
    s = ingest(files, target)
    assert s.accepted == 4
    assert len(s.errors) == 1 and "bad.zip" in s.errors[0]
    names = dict(s.skipped)
    assert "two.webp" in names and "readme.md" in names and "too small" in names["speck.png"]
    written = all_files(root)
    assert written == set(list_images(target)) and len(written) == 4
    assert all(p.parent == target for p in written)
    # a second upload adds to the folder without overwriting anything
    s2 = ingest([("three.png", png_bytes(30))], target)
    assert s2.accepted == 1 and len(list_images(target)) == 5
    assert s2.files[0] not in written


def test_picture_limit(sandbox):
    _, target = sandbox
    files = [(f"{i}.png", png_bytes(i)) for i in range(5)]
    s = ingest(files, target, UploadLimits(max_images=3))
    assert s.accepted == 3 and len(s.skipped) == 2
    assert all("limit of 3" in r for _, r in s.skipped)


def test_class_folders_are_labels_never_paths(sandbox):
    root, target = sandbox
    data = make_zip([
        ("../../cats/a.png", png_bytes(1)),
        ("/abs/dogs/b.png", png_bytes(2)),
        ("..\\..\\dogs\\c.png", png_bytes(3)),
        ("x/../d.png", png_bytes(4)),  # ".." is no class
        ("e.png", png_bytes(5)),  # a loose file: no class
        ("cats/notes.txt", b"hello"),
    ])
    s = extract_zip(data, target)
    assert s.accepted == 5 and s.classes == {"cats": 1, "dogs": 2}
    assert all_files(root) == set(s.files) | {target / LABELS_FILE}
    assert {p for p in root.rglob("*") if p.is_dir()} == {root / "deep", root / "deep/er", target}
    classes = read_classes(target)
    assert sorted(classes.values()) == ["cats", "dogs", "dogs"]
    assert set(classes) <= {p.name for p in s.files}
    # a second zip adds to the record; a damaged record means no classes, not a crash
    s2 = extract_zip(make_zip([("birds/f.png", png_bytes(6))]), target)
    assert s2.classes == {"birds": 1} and len(read_classes(target)) == 4
    (target / LABELS_FILE).write_text("[not a dict")
    assert read_classes(target) == {}
