"""Session state shared across pages: the keys, their defaults, and binding widgets to them.

(The image picker is :mod:`ui.picker`, model and device choice :mod:`ui.models`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from diffusion_core.app.forward import DEFAULT_STEP
from diffusion_core.maths.schedules import T_DEFAULT, T_MAX, T_MIN, canonical_schedule
from diffusion_core.media.samples import list_samples
from diffusion_core.units import SEED_MAX, clamp_int

__all__ = ["K_SAMPLE", "K_SCHEDULE", "K_SEED", "K_SIZE", "K_SOURCE", "K_STEP", "K_T", "K_UPLOAD",
           "K_UPLOAD_NAME", "as_default", "bind", "init_state"]

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


def init_state(scope: str | None = None, defaults: Mapping[str, Any] | None = None) -> None:
    """Set the shared defaults once per session. ``scope`` names the page for bind(); a page
    that gives none gets its script's id, and later calls in the same run keep it.
    ``defaults``: the page's own first values (a shared key given here wins over the
    shared default, e.g. the Restore page's smaller working size)."""
    ss = st.session_state
    if scope:
        ss["_lab_scope"] = scope
        ss["_lab_scope_page"] = _page_id()
    elif ss.get("_lab_scope_page") != _page_id():
        ss["_lab_scope"] = _page_id()
        ss["_lab_scope_page"] = _page_id()
    for k, v in (defaults or {}).items():
        ss.setdefault(k, v)
    samples = list_samples()
    ss.setdefault(K_SOURCE, "sample")
    ss.setdefault(K_SAMPLE, samples[0] if samples else None)
    ss.setdefault(K_SIZE, 512)
    ss.setdefault(K_SEED, 0)
    ss.setdefault(K_SCHEDULE, "linear")
    ss.setdefault(K_T, T_DEFAULT)
    ss.setdefault(K_STEP, DEFAULT_STEP)
    # Server-side clamps of the shared values: a value that fit one page (a step of 250,
    # then T lowered to 100) must not break another page's widget bounds.
    ss[K_SCHEDULE] = canonical_schedule(ss[K_SCHEDULE])
    ss[K_T] = clamp_int(ss[K_T], T_MIN, T_MAX, T_DEFAULT)
    ss[K_SEED] = clamp_int(ss[K_SEED], 0, SEED_MAX, 0)
    ss[K_STEP] = clamp_int(ss[K_STEP], 0, ss[K_T], min(DEFAULT_STEP, ss[K_T]))
