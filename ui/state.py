"""Session-state keys shared across pages, and the image picker every page uses."""

from __future__ import annotations

import hashlib

import streamlit as st

from diffusion_core.maths.schedules import T_DEFAULT, T_MAX, T_MIN
from diffusion_core.media.images import (
    SAMPLES,
    ImageLoadError,
    LoadedImage,
    list_samples,
    load_image,
    load_sample,
)

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif"]
SIZES = [128, 192, 256, 384, 512, 768, 1024]

# Keys in st.session_state shared by all pages
K_SOURCE = "lab_source"          # "sample" or "upload"
K_SAMPLE = "lab_sample"          # sample name
K_UPLOAD = "lab_upload_bytes"    # bytes of the last good upload (kept across pages)
K_UPLOAD_NAME = "lab_upload_label"
K_SIZE = "lab_max_side"
K_SEED = "lab_seed"
K_SCHEDULE = "lab_schedule"
K_T = "lab_T"
K_STEP = "lab_step"


_MISSING = object()


def _copy_back(key: str, wk: str) -> None:
    st.session_state[key] = st.session_state[wk]


def as_default(key: str, options=None, arg: str = "value", lo=None, hi=None) -> dict:
    """Widget kwargs that make the current ``st.session_state[key]`` the widget's default.

    A value that code puts into session state reaches the browser only once; a browser that
    missed it (a rerun came first, or the widget moved on the page) fell back to the
    widget's own default: an upload on Add noise reset "Number of steps T" to its minimum,
    10. With the default equal to the state, that fallback changes nothing.

    ``arg``: "value" (number boxes, sliders, text), "index" (selectbox, radio; needs
    ``options``) or "default" (multiselect; needs ``options``). Values outside
    ``options`` or ``[lo, hi]`` give no default (the widget's own one stays); a number is
    given the type of ``lo``, as Streamlit wants one numeric type per widget.
    """
    v = st.session_state.get(key)
    if options is not None:
        options = list(options)
        if arg == "default":
            return {"default": [o for o in (v or []) if o in options]}
        if v not in options:
            return {}
        return {"index": options.index(v)} if arg == "index" else {"value": v}
    if v is None:
        return {}
    if lo is not None:
        try:
            v = type(lo)(v)
        except (TypeError, ValueError):
            return {}
        if v < lo or (hi is not None and v > hi):
            return {}
    return {arg: v}


def bind(key: str, options=None, by_index: bool = False, lo=None, hi=None) -> dict:
    """Widget kwargs that tie a widget to the shared value ``st.session_state[key]``.

    Streamlit forgets (or mixes up) a widget's own state when the same control appears on
    several pages, so shared choices (image, seed, step, ...) live under plain keys and each
    page's widget gets a private key ``w_<page>_<key>``, refreshed from the shared value
    before it is drawn and copied back on change. The shared value is also the widget's
    default (see :func:`as_default`); pass ``options`` for choice widgets (``by_index`` for
    selectbox and radio) and ``lo``/``hi`` for numbers.
    """
    ss = st.session_state
    wk = f"w_{ss.get('_lab_scope', '')}_{key}"
    if ss.get(wk, _MISSING) != ss.get(key):
        ss[wk] = ss.get(key)
    kw = {"key": wk, "on_change": _copy_back, "args": (key, wk)}
    return kw | as_default(key, options, "index" if by_index else "value", lo, hi)


def _page_id() -> str:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return (ctx.page_script_hash or "")[:10] if ctx else ""
    except Exception:  # noqa: BLE001 - outside a streamlit run
        return ""


def init_state(scope: str | None = None) -> None:
    """Set the shared defaults once per session. ``scope`` names the page for bind(); a page
    that gives none gets its script's id, and later calls in the same run keep it."""
    ss = st.session_state
    if scope:
        ss["_lab_scope"] = scope
        ss["_lab_scope_page"] = _page_id()
    elif ss.get("_lab_scope_page") != _page_id():
        ss["_lab_scope"] = _page_id()
        ss["_lab_scope_page"] = _page_id()
    samples = list_samples()
    ss.setdefault(K_SOURCE, "sample")
    ss.setdefault(K_SAMPLE, samples[0] if samples else None)
    ss.setdefault(K_SIZE, 512)
    ss.setdefault(K_SEED, 0)
    ss.setdefault(K_SCHEDULE, "linear")
    ss.setdefault(K_T, 1000)
    ss.setdefault(K_STEP, 250)
    # Server-side clamps of the shared numbers: a value that fit one page (a step of 250,
    # then T lowered to 100) must not break another page's widget bounds.
    ss[K_T] = clamp_int(ss[K_T], T_MIN, T_MAX, T_DEFAULT)
    ss[K_SEED] = clamp_int(ss[K_SEED], 0, 2**31 - 1, 0)
    ss[K_STEP] = clamp_int(ss[K_STEP], 0, ss[K_T], min(250, ss[K_T]))


@st.cache_data(max_entries=32, show_spinner=False)
def _load_sample_cached(name: str, max_side: int):
    im = load_sample(name, max_side=max_side)
    return im.tensor, im.notes


@st.cache_data(max_entries=16, show_spinner=False)
def _load_bytes_cached(digest: str, data: bytes, max_side: int):
    im = load_image(data, max_side=max_side)
    return im.tensor, im.notes


def clamp_int(v, lo: int, hi: int, default: int) -> int:
    """Server-side clamp for any numeric control (the widget bounds are not trusted)."""
    try:
        v = int(v)
    except (TypeError, ValueError):
        return default
    return max(lo, min(hi, v))


def image_picker(container=None, key: str = "picker"):
    """Sidebar widget: built-in sample or upload. Returns (tensor (C,H,W) in [-1,1], label).

    A bad upload shows one clear message and the previous image stays in use."""
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
            data = up.getvalue()
            digest = hashlib.sha256(data).hexdigest()
            if ss.get("lab_upload_digest") != digest:
                try:
                    load_image(data, max_side=64)  # validate once before keeping it
                    ss[K_UPLOAD] = data
                    ss["lab_upload_digest"] = digest
                    ss[K_UPLOAD_NAME] = "your upload"
                    ss.pop("lab_upload_error", None)
                except ImageLoadError as e:
                    ss["lab_upload_error"] = str(e)
                    ss["lab_upload_digest"] = digest
        if ss.get("lab_upload_error"):
            slot.error(ss["lab_upload_error"])
        if ss.get(K_UPLOAD) is None:
            slot.info("No upload yet: showing the built-in sample meanwhile.")
    else:
        slot.selectbox("Sample", samples, **bind(K_SAMPLE, samples, True),
                       format_func=lambda n: SAMPLES[n].title if n in SAMPLES else n)
    c.select_slider("Working size (longest side, pixels)", SIZES, **bind(K_SIZE, SIZES))
    max_side = clamp_int(ss[K_SIZE], 32, 1024, 512)
    if ss[K_SOURCE] == "upload" and ss.get(K_UPLOAD) is not None:
        data = ss[K_UPLOAD]
        try:
            t, notes = _load_bytes_cached(ss["lab_upload_digest"], data, max_side)
            return t, "your upload", notes
        except ImageLoadError as e:  # pragma: no cover - validated above
            c.error(str(e))
    name = ss[K_SAMPLE] if ss[K_SAMPLE] in samples else samples[0]
    t, notes = _load_sample_cached(name, max_side)
    return t, SAMPLES[name].title, notes


def loaded_to_tuple(im: LoadedImage):
    return im.tensor, im.notes
