"""The Create page's browser mode (Streamlit side): the ``web/app`` folder mounted as a
component (``components.v1.declare_component(path=...)``), served by the app itself.

:func:`browser_create` mounts it for one model and reads the one status it reports back
(:mod:`diffusion_core.browser.create`). A session whose browser failed (no WebAssembly, the
``.wasm`` blocked, too slow to load) is not asked again for that model: the page draws on the
server and says why in one line.
"""

from __future__ import annotations

import streamlit as st
import streamlit.components.v1 as components

from diffusion_core.browser.create import APP_DIR, BrowserStatus, browser_offer, read_status
from diffusion_core.models.registry import ModelInfo

_create_browser = components.declare_component("create_browser", path=str(APP_DIR))
FAILED_KEY = "create_browser_failed"  # model name (or EVERY) -> the line that says why
EVERY = "*"


def browser_create(info: ModelInfo, values: dict, limits: dict, on: bool = True,
                   key: str = "create_browser") -> BrowserStatus | None:
    """Mount browser-mode Create for ``info`` (starting from the page's ``values``) unless
    it is off (None: the visitor chose the server), cannot be offered or already failed in
    this session; what the page should do. The component sits in a container of its own,
    kept (empty) when it is not there, so whatever the page draws below keeps its place (no
    stale copy of a button during the rerun that swaps modes)."""
    box = st.container()
    if not on:
        return None
    failed = st.session_state.setdefault(FAILED_KEY, {})
    if EVERY in failed or info.name in failed:
        return BrowserStatus("fallback", failed.get(EVERY) or failed[info.name])
    offer = browser_offer(info, values, limits)
    if not offer.available:
        return BrowserStatus("fallback", offer.note)
    with box:
        value = _create_browser(**offer.args, key=key, default=None)
    status = read_status(value, info.name)
    if status.state == "fallback":
        failed[EVERY if status.every_model else info.name] = status.note
        st.rerun()  # drop the component now: the server path takes its place
    return status
