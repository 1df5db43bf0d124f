"""Choosing and loading a model on a page, and the button that starts the job using it.

There is one model cache, the library's (:func:`diffusion_core.models.registry.get_denoiser`,
shared by every page, session and thread); this module only puts a spinner around a load.
(Watching the job while it runs: :mod:`ui.job_watch`.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from diffusion_core.app.estimate import Estimate, default_budget_s, model_speed
from diffusion_core.app.models import device_options, device_text, model_named, open_model, run_device
from diffusion_core.app.settings import choose
from diffusion_core.jobs.timing import Speed
from diffusion_core.models.registry import ModelInfo, ModelLoadError
from ui.job_watch import job_state
from ui.picker import suggest_size
from ui.state import K_SIZE, as_default

KEEP = "session"  # a page's own settings survive a trip to another page


def load_model(name: str, device):
    """The model from the shared cache; "Loading the model…" shows while it is read from
    disk (Streamlit shows a spinner only after half a second, so never for a cached one).
    Raises :class:`ModelLoadError` with a sentence for the screen."""
    with st.spinner("Loading the model…"):
        return open_model(name, device)


def measured_speed(info: ModelInfo | None, device) -> Speed | None:
    """How fast ``info`` runs on ``device``: measured once per server (at its first load,
    with a spinner), then kept; None without a model or where it cannot be loaded."""
    if info is None:
        return None
    with st.spinner("Measuring how fast this computer runs the model (once)…"):
        return model_speed(info, device)


def device_defaults(page: str, models: Sequence[ModelInfo],
                    pick: Callable[[Speed | None, float | None], Any],
                    keys: Sequence[str]) -> None:
    """The page's defaults for this computer: ``pick(speed of the page's first model on the
    default device, the seconds budget)`` (one value, or one per key of ``keys``), chosen on
    the page's first visit in a session and kept. Every run gives them to the keys that have
    no value (a page's widgets forget theirs when the visitor leaves the page); a value the
    session holds is never changed. The shared working size is offered once, on the first
    visit (see :func:`ui.picker.suggest_size`)."""
    ss = st.session_state
    store = f"{page}_device_defaults"
    first = store not in ss
    if first:
        budget = default_budget_s()
        speed = measured_speed(models[0] if models else None, run_device("auto")) if budget else None
        values = pick(speed, budget)
        ss[store] = dict(zip(keys, values if len(keys) > 1 else (values,)))
    for key, value in ss[store].items():
        if key != K_SIZE:
            ss.setdefault(key, value)
        elif first:
            suggest_size(value)


def estimate_caption(container, estimate: Estimate | None) -> None:
    """"About 4 s on this computer · CPU (2 threads)." beside a Run button (nothing when
    not known)."""
    if estimate is not None:
        container.caption(f"{estimate.text[0].upper()}{estimate.text[1:]}.")


def model_select(container, key: str, models: list[ModelInfo], preferred: str | None = None,
                 labels: bool = True, always: bool = True, warn: bool = False) -> ModelInfo:
    """A "Model" menu over ``models`` (not empty) kept in ``st.session_state[key]``; an
    unknown choice becomes ``preferred`` (if offered) or the first model. ``labels``: show
    "name (shipped)"; ``always=False``: no menu when there is only one model; ``warn``: say
    so under the menu when the chosen model's card is damaged."""
    names = [m.name for m in models]
    ss = st.session_state
    if ss.get(key) not in names:
        ss[key] = choose(preferred, names, names[0])
    if always or len(names) > 1:
        container.selectbox("Model", names, key=key, persist_state=KEEP,
                            **as_default(key, names, "index"),
                            format_func=(lambda n: model_named(models, n).label) if labels else str)
    info = model_named(models, ss[key])
    if warn and info.card.get("error"):
        container.warning(f"{info.label}: {info.card['error']}")
    return info


def device_select(container, key: str) -> str:
    """A "Device" menu (auto, CPU, GPU where there is one) kept in ``st.session_state[key]``."""
    options = device_options()
    st.session_state[key] = choose(st.session_state.get(key), options, "auto")
    container.selectbox("Device", options, key=key, persist_state=KEEP,
                        **as_default(key, options, "index"), format_func=device_text)
    return st.session_state[key]


def start_with_model(job_key: str, error_key: str, model: str, device,
                     start: Callable[[Any], Any]) -> None:
    """Load ``model`` on ``device``, then ``start(denoiser)`` and keep the job it returns in
    ``st.session_state[job_key]``. A model that cannot be loaded leaves its sentence in
    ``st.session_state[error_key]`` instead (and no new job)."""
    ss = st.session_state
    try:
        den = load_model(model, device)
    except ModelLoadError as e:
        ss[error_key] = str(e)
        return
    ss[job_key] = start(den)
    ss.pop(error_key, None)


def run_button(col, label: str, job_key: str, error_key: str, model: str, device,
               start: Callable[[Any], Any], disabled: bool = False, key: str | None = None):
    """The page's start button in ``col``: pressed while the page's job (kept in
    ``st.session_state[job_key]``) is not running, it loads the model and starts a new one
    (:func:`start_with_model`); a model that could not be loaded shows its sentence under
    the button row. Returns the page's job (None before the first)."""
    job, running = job_state(st.session_state.get(job_key))
    if col.button(label, type="primary", disabled=running or disabled, width="stretch",
                  key=key) and not running and not disabled:
        start_with_model(job_key, error_key, model, device, start)
        job, running = job_state(st.session_state.get(job_key))
    if st.session_state.get(error_key):
        st.error(st.session_state[error_key])
    return job
