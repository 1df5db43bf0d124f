"""Safe intake of a user's training pictures: a zip archive and/or several loose files.

Everything a visitor uploads is treated as hostile:

* **Zip slip.** Member names are never used as paths. Each accepted picture is decoded and
  written as a fresh PNG under a generated name (``img_00001.png``, ...) directly inside the
  target folder, so ``../../evil.png`` or ``/etc/x.png`` cannot land anywhere else.
* **Zip bombs.** The archive's own size, its number of members, the sum of the sizes its
  directory declares, and each member's declared size are all checked before anything is
  unpacked; while a member is unpacked the bytes are counted again (a lying header cannot
  get more than the per-file and total budgets through).
* **Not pictures.** Files without a picture extension, encrypted members, links and macOS
  metadata are skipped and listed. Every picture goes through :func:`decode.load_image`
  (the one validated loader: size, pixel and decompression-bomb limits, odd colour modes)
  and is re-encoded, so what lands on disk is always a plain PNG.

**Classes.** A picture inside a folder of the zip belongs to the class named after that
folder (the folder directly above it: ``pets/cat/1.png`` is a "cat"). The class name is only
ever a label: it is cleaned up for display and recorded in ``labels.json`` beside the
generated file names (:func:`read_classes`), never used to build a path. Loose files have no
class.

Problems with one file skip that file (with a reason the page can show); problems with the
whole archive raise :class:`UploadError`. No streamlit here.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Iterable

import torch
import torch.nn.functional as F

from diffusion_core.media.convert import to_pil
from diffusion_core.media.decode import ImageLoadError, load_image
from diffusion_core.units import IMAGE_EXTS, ZIP_EXTS

MiB = 1024 * 1024
_CHUNK = 64 * 1024
LABELS_FILE = "labels.json"  # generated file name -> class name, beside the pictures
MAX_CLASS_NAME = 40


class UploadError(ValueError):
    """The whole upload is refused; ``str(e)`` is a sentence for the screen."""


@dataclass(frozen=True)
class UploadLimits:
    max_zip_bytes: int = 200 * MiB  # the archive itself
    max_members: int = 5000  # entries in one archive (or loose files in one go)
    max_total_bytes: int = 512 * MiB  # uncompressed, all files together
    max_file_bytes: int = 25 * MiB  # one file, uncompressed
    max_images: int = 2000  # pictures kept in one target folder
    max_side: int = 512  # pictures are scaled down to this longest side
    min_side: int = 16  # smaller pictures teach nothing


DEFAULT_LIMITS = UploadLimits()


@dataclass
class UploadSummary:
    """What an upload produced: ``accepted`` pictures written to ``folder``, the ``skipped``
    files as (name, reason) pairs and whole-upload ``errors`` (one sentence each)."""

    folder: Path
    accepted: int = 0
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    classes: dict[str, int] = field(default_factory=dict)  # class name -> pictures added

    def merge(self, other: "UploadSummary") -> None:
        self.accepted += other.accepted
        self.files += other.files
        self.skipped += other.skipped
        self.errors += other.errors
        for name, n in other.classes.items():
            self.classes[name] = self.classes.get(name, 0) + n

    def message(self) -> str:
        """One line for the screen."""
        s = f"{self.accepted} picture{'s' if self.accepted != 1 else ''} added"
        if self.skipped:
            s += f", {len(self.skipped)} file{'s' if len(self.skipped) != 1 else ''} skipped"
        if self.classes:
            k = len(self.classes)
            s += f" ({k} class{'es' if k != 1 else ''} from the zip's folders: " + \
                ", ".join(f"{c} ×{n}" for c, n in sorted(self.classes.items())) + ")"
        return s + "."


def _mb(n: int) -> str:
    return f"{n / MiB:.1f} MB"


def display_name(name: str, max_len: int = 80) -> str:
    """A harmless label for a member name (never used as a path)."""
    base = PurePosixPath(str(name).replace("\\", "/")).name or str(name)
    base = "".join(ch if ch.isprintable() else "?" for ch in base)
    return base if len(base) <= max_len else base[: max_len - 1] + "…"


def class_of(name: str) -> str | None:
    """The class of a zip member: the name of the folder directly above it, cleaned up
    (printable, trimmed, at most :data:`MAX_CLASS_NAME` characters); None for a loose file
    or a folder name that is empty, "." or "..". Only ever a label, never a path."""
    parts = [p for p in str(name).replace("\\", "/").split("/") if p not in ("", ".")]
    if len(parts) < 2:
        return None
    folder = "".join(ch if ch.isprintable() else "?" for ch in parts[-2]).strip()
    if folder in ("", "..") or set(folder) <= {"."}:
        return None
    return folder[:MAX_CLASS_NAME]


def read_classes(folder: str | Path) -> dict[str, str]:
    """The class of each picture in ``folder`` (generated file name -> class name), as
    :func:`extract_zip` recorded it; {} when none has one (or the record is unreadable)."""
    path = Path(folder) / LABELS_FILE
    try:
        got = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    if not isinstance(got, dict):
        return {}
    return {str(k): str(v) for k, v in got.items() if isinstance(v, str) and v}


def _suffix(name: str) -> str:
    return PurePosixPath(str(name).replace("\\", "/")).suffix.lower()


def _is_metadata(name: str) -> bool:
    parts = PurePosixPath(str(name).replace("\\", "/")).parts
    base = parts[-1] if parts else ""
    return "__MACOSX" in parts or base.startswith("._") or base in (".DS_Store", "Thumbs.db")


class _Writer:
    """Writes validated pictures as PNGs under generated names inside one folder."""

    def __init__(self, folder: Path, limits: UploadLimits, summary: UploadSummary):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.limits = limits
        self.summary = summary
        self.count = len(list_images(self.folder))
        self.next_index = self.count + 1
        self.classes: dict[str, str] = {}  # generated file name -> class, not saved yet

    def full(self) -> bool:
        return self.count >= self.limits.max_images

    def add(self, label: str, data: bytes, cls: str | None = None) -> None:
        if self.full():
            self.summary.skipped.append(
                (label, f"over the limit of {self.limits.max_images} pictures"))
            return
        try:
            im = load_image(data, max_side=self.limits.max_side, mode="auto")
        except ImageLoadError as e:
            self.summary.skipped.append((label, str(e)))
            return
        w, h = im.size
        if min(w, h) < self.limits.min_side:
            self.summary.skipped.append((label, f"too small ({w}×{h}; at least "
                                                f"{self.limits.min_side} pixels a side)"))
            return
        buf = io.BytesIO()
        to_pil(im.tensor).save(buf, format="PNG")
        png = buf.getvalue()
        while True:  # a generated name that is not taken yet; never overwrite
            path = self.folder / f"img_{self.next_index:05d}.png"
            self.next_index += 1
            try:
                with open(path, "xb") as fh:
                    fh.write(png)
                break
            except FileExistsError:
                continue
        self.count += 1
        self.summary.accepted += 1
        self.summary.files.append(path)
        if cls is not None:
            self.summary.classes[cls] = self.summary.classes.get(cls, 0) + 1
            self.classes[path.name] = cls

    def save_classes(self) -> None:
        """Add this writer's classes to the folder's ``labels.json`` (atomically)."""
        if not self.classes:
            return
        merged = {**read_classes(self.folder), **self.classes}
        tmp = self.folder / (LABELS_FILE + ".tmp")
        tmp.write_text(json.dumps(merged, indent=1, sort_keys=True))
        os.replace(tmp, self.folder / LABELS_FILE)


def _read_capped(fh: IO[bytes], cap: int) -> bytes | None:
    """Read at most ``cap`` bytes; None when there is more (counted while streaming)."""
    buf = bytearray()
    while True:
        chunk = fh.read(min(_CHUNK, cap + 1 - len(buf)))
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > cap:
            return None


def _source_bytes(source, cap: int, what: str) -> bytes:
    """Bytes of a path, bytes or file-like object, refusing anything over ``cap``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.is_file():
            raise UploadError(f"{what} is not a file.")
        if p.stat().st_size > cap:
            raise UploadError(f"{what} is too large ({_mb(p.stat().st_size)}; the limit is "
                              f"{_mb(cap)}).")
        with open(p, "rb") as fh:
            data = _read_capped(fh, cap) or b""
    elif hasattr(source, "getvalue"):
        data = bytes(source.getvalue())
    elif hasattr(source, "read"):
        got = _read_capped(source, cap)
        if got is None:
            raise UploadError(f"{what} is too large (the limit is {_mb(cap)}).")
        data = got
    else:
        raise TypeError(f"unsupported upload type {type(source).__name__}")
    if len(data) > cap:
        raise UploadError(f"{what} is too large ({_mb(len(data))}; the limit is {_mb(cap)}).")
    return data


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def extract_zip(source, folder: str | Path, limits: UploadLimits = DEFAULT_LIMITS,
                summary: UploadSummary | None = None) -> UploadSummary:
    """Unpack the pictures of a zip archive (bytes, a path or a file-like object) into
    ``folder`` under generated names. Raises :class:`UploadError` when the archive as a
    whole is refused (not a zip, too large, too many entries, unpacks to too much)."""
    summary = summary if summary is not None else UploadSummary(Path(folder))
    data = _source_bytes(source, limits.max_zip_bytes, "The zip file")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise UploadError("This is not a readable zip file (it may be damaged).") from e
    with zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        if len(members) > limits.max_members:
            raise UploadError(f"The zip file has {len(members)} entries; the limit is "
                              f"{limits.max_members}.")
        declared = sum(max(0, int(i.file_size)) for i in members)
        if declared > limits.max_total_bytes:
            raise UploadError(f"The zip file would unpack to {_mb(declared)}; the limit is "
                              f"{_mb(limits.max_total_bytes)}. Nothing was unpacked.")
        writer = _Writer(Path(folder), limits, summary)
        budget = limits.max_total_bytes
        for k, info in enumerate(members):
            label = display_name(info.filename)
            if budget <= 0:  # the streaming count used up the total: list the rest
                summary.skipped += [(display_name(i.filename), "the archive unpacks to more "
                                     "than the limit") for i in members[k:]]
                break
            reason = _member_problem(info, limits)
            if reason is None and writer.full():
                reason = f"over the limit of {limits.max_images} pictures"
            if reason is not None:
                summary.skipped.append((label, reason))
                continue
            cap = min(limits.max_file_bytes, budget)
            try:
                with zf.open(info) as fh:
                    raw = _read_capped(fh, cap)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError,
                    NotImplementedError, ValueError):
                summary.skipped.append((label, "could not be unpacked (damaged entry)"))
                continue
            if raw is None:
                summary.skipped.append((label, "unpacks to more than it declares or than the "
                                               "limits allow"))
                budget -= cap
                continue
            budget -= len(raw)
            writer.add(label, raw, class_of(info.filename))
        writer.save_classes()
    return summary


def _member_problem(info: zipfile.ZipInfo, limits: UploadLimits) -> str | None:
    """Why a zip member is skipped without unpacking it (None: try it)."""
    if _is_metadata(info.filename):
        return "system file (not a picture)"
    ext = _suffix(info.filename)
    if ext not in IMAGE_EXTS:
        return f"not a picture file ({ext or 'no extension'})"
    if info.flag_bits & 0x1:
        return "password-protected"
    if _is_link(info):
        return "a link, not a file"
    if info.file_size > limits.max_file_bytes:
        return (f"too large ({_mb(info.file_size)}; the limit is {_mb(limits.max_file_bytes)} "
                "per file)")
    return None


def _upload_name(item) -> str:
    if isinstance(item, tuple):
        return str(item[0])
    if isinstance(item, (str, os.PathLike)):
        return Path(item).name
    return str(getattr(item, "name", "upload"))


def ingest(files: Iterable, folder: str | Path,
           limits: UploadLimits = DEFAULT_LIMITS) -> UploadSummary:
    """Add several uploads (Streamlit ``UploadedFile``\\ s, ``(name, bytes)`` pairs or paths)
    to ``folder``: zips are unpacked with :func:`extract_zip`, pictures are validated and
    saved under generated names, anything else is skipped. A refused zip becomes one entry
    in ``errors``; the other uploads still go in."""
    folder = Path(folder)
    summary = UploadSummary(folder)
    items = list(files)
    if len(items) > limits.max_members:
        summary.errors.append(f"{len(items)} files at once is too many; the limit is "
                              f"{limits.max_members}.")
        return summary
    writer = _Writer(folder, limits, summary)
    total = 0
    for item in items:
        name = _upload_name(item)
        label = display_name(name)
        src = item[1] if isinstance(item, tuple) else item
        ext = _suffix(name)
        try:
            if ext in ZIP_EXTS:
                extract_zip(src, folder, limits, summary)
                writer.count = len(list_images(folder))
                continue
            if ext not in IMAGE_EXTS:
                summary.skipped.append((label, f"not a picture or zip file ({ext or 'no extension'})"))
                continue
            data = _source_bytes(src, limits.max_file_bytes, f"“{label}”")
        except UploadError as e:
            msg = str(e)
            summary.errors.append(msg if label in msg else f"{label}: {msg}")
            continue
        total += len(data)
        if total > limits.max_total_bytes:
            summary.skipped.append((label, f"the uploads add up to more than "
                                           f"{_mb(limits.max_total_bytes)}"))
            continue
        writer.add(label, data)
    return summary


def list_images(folder: str | Path) -> list[Path]:
    """The pictures directly inside ``folder`` (what :func:`ingest` wrote), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def preview_batch(folder: str | Path, n: int = 16, side: int = 64) -> torch.Tensor:
    """Up to ``n`` of the folder's pictures as centre-cropped RGB squares (N,3,side,side) in
    [-1, 1], for a grid of what will be trained on."""
    out = []
    for p in list_images(folder)[: max(0, int(n))]:
        try:
            t = load_image(p, max_side=4 * side, mode="rgb").tensor
        except ImageLoadError:
            continue
        h, w = t.shape[1:]
        s = min(h, w)
        t = t[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(F.interpolate(t[None], size=(side, side), mode="area")[0])
    return torch.stack(out) if out else torch.zeros(0, 3, side, side)
