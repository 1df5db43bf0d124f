"""The image picker every page uses: a built-in sample or the visitor's own upload."""

from __future__ import annotations

import hashlib

import streamlit as st

from diffusion_core.media.decode import ImageLoadError, load_image
from diffusion_core.media.samples import SAMPLES, list_samples, load_sample
from diffusion_core.units import IMAGE_EXTS, clamp_int
from ui.state import K_SAMPLE, K_SIZE, K_SOURCE, K_UPLOAD, K_UPLOAD_NAME, bind, init_state

UPLOAD_TYPES = sorted(e.lstrip(".") for e in IMAGE_EXTS)
SIZES = [128, 192, 256, 384, 512, 768, 1024]
K_DIGEST, K_ERROR = "lab_upload_digest", "lab_upload_error"
K_SIZE_CHOSEN = "lab_size_chosen"  # the working size changed since the slider was drawn
K_SIZE_DRAWN = "lab_size_drawn"  # the working size the slider was last drawn with
SHARED_FIRST_SIZE = 512  # the working size a session starts with (ui.state.init_state)
UPLOAD_LABEL = "your upload"  # never the file's own name (it could be anything)


@st.cache_data(max_entries=32, show_spinner=False)
def _load_sample_cached(name: str, max_side: int):
    im = load_sample(name, max_side=max_side)
    return im.tensor, im.notes


@st.cache_data(max_entries=16, show_spinner=False)
def _load_bytes_cached(digest: str, data: bytes, max_side: int):
    im = load_image(data, max_side=max_side)
    return im.tensor, im.notes


def _take_upload(data: bytes) -> None:
    """Keep a new upload if it decodes; otherwise remember why not (the previous one stays)."""
    ss = st.session_state
    digest = hashlib.sha256(data).hexdigest()
    if ss.get(K_DIGEST) == digest:
        return
    ss[K_DIGEST] = digest
    try:
        load_image(data, max_side=64)  # validate once before keeping it
    except ImageLoadError as e:
        ss[K_ERROR] = str(e)
        return
    ss[K_UPLOAD], ss[K_UPLOAD_NAME] = data, UPLOAD_LABEL
    ss.pop(K_ERROR, None)


def _upload(max_side: int):
    ss = st.session_state
    t, notes = _load_bytes_cached(ss[K_DIGEST], ss[K_UPLOAD], max_side)
    return t, UPLOAD_LABEL, notes


def _sample(max_side: int):
    ss, samples = st.session_state, list_samples()
    name = ss[K_SAMPLE] if ss[K_SAMPLE] in samples else samples[0]
    t, notes = _load_sample_cached(name, max_side)
    return t, SAMPLES[name].title, notes


def suggest_size(size: int) -> None:
    """A page's working size for this device (on its first visit): it replaces the size a
    session starts with, never a size the visitor chose or any other size already set."""
    ss = st.session_state
    if not ss.get(K_SIZE_CHOSEN) and ss.get(K_SIZE, SHARED_FIRST_SIZE) == SHARED_FIRST_SIZE:
        ss[K_SIZE] = ss[K_SIZE_DRAWN] = int(size)


def _size_slider(c) -> None:
    """The working-size slider; a size that changed since it was last drawn was chosen (with
    the slider, or set by code other than :func:`suggest_size`) and is never replaced."""
    ss = st.session_state
    if K_SIZE_DRAWN in ss and ss.get(K_SIZE) != ss[K_SIZE_DRAWN]:
        ss[K_SIZE_CHOSEN] = True
    c.select_slider("Working size (longest side, pixels)", SIZES, **bind(K_SIZE, SIZES))
    ss[K_SIZE_DRAWN] = ss.get(K_SIZE)


def image_picker(container=None, key: str = "picker"):
    """Sidebar widget: built-in sample or upload. Returns (tensor (C,H,W) in [-1,1], label,
    notes). A bad upload shows one clear message and the previous image stays in use; a
    picture that cannot be loaded at all stops the page with one message."""
    init_state()
    c = container or st.sidebar
    ss = st.session_state
    samples = list_samples()
    c.radio("Image", ["sample", "upload"], **bind(K_SOURCE, ["sample", "upload"], True),
            horizontal=True,
            format_func=lambda s: "Built-in sample" if s == "sample" else "Upload your own")
    # everything that comes and goes with the source (uploader, its messages, the sample
    # list) lives in one container, so the widgets drawn after it keep their place
    slot = c.container()
    if ss[K_SOURCE] == "upload":
        up = slot.file_uploader("Upload a photo (PNG, JPEG, WebP, BMP, TIFF)",
                                type=UPLOAD_TYPES, key=f"{key}_uploader")
        if up is not None:
            _take_upload(up.getvalue())
        if ss.get(K_ERROR):
            slot.error(ss[K_ERROR])
        if ss.get(K_UPLOAD) is None:
            slot.info("No upload yet: showing the built-in sample meanwhile.")
    else:
        slot.selectbox("Sample", samples, **bind(K_SAMPLE, samples, True),
                       format_func=lambda n: SAMPLES[n].title if n in SAMPLES else n)
    _size_slider(c)
    max_side = clamp_int(ss[K_SIZE], 32, 1024, 512)
    if ss[K_SOURCE] == "upload" and ss.get(K_UPLOAD) is not None:
        try:
            return _upload(max_side)
        except ImageLoadError as e:  # pragma: no cover - validated when it was taken
            c.error(str(e))
    try:
        return _sample(max_side)
    except ImageLoadError as e:  # e.g. a sample's file is missing
        st.error(f"The picture could not be loaded: {e}")
        st.stop()


def show_notes(notes) -> None:
    """What the loader did to the picture (resized, rotated, ...), one caption each."""
    for n in notes:
        st.caption(f"ℹ️ {n}")
