"""Watching a background job from a page: a fragment that redraws itself while the job runs.

Every page that starts a job (:mod:`diffusion_core.jobs`) keeps it somewhere (its session
state, or the server-wide training slot) and calls :func:`watch` where the live view goes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st


def job_state(job) -> tuple[Any, bool]:
    """(the job or None, whether it is still running)."""
    return job, job is not None and not job.done


def watch(get_job: Callable[[], Any], draw: Callable[[Any, dict], None], every: float = 0.3,
          key: str = "job", when_done: bool = False) -> None:
    """Draw ``draw(job, snapshot)`` now and every ``every`` seconds while the job runs.

    When the job ends, the whole page reruns once (so that it can show the results, and the
    buttons that were disabled during the run come back); ``st.session_state[key +
    "_announced"]`` remembers which job that was done for, and a full run of the page marks a
    finished job as shown at once. ``when_done``: keep drawing the live view of a finished job
    too (else only the results below show it)."""
    job, running = job_state(get_job())
    if job is not None and job.done:  # this run of the whole page shows it
        st.session_state[f"{key}_announced"] = job.id

    @st.fragment(run_every=every if running else None)
    def live() -> None:
        job = get_job()
        if job is None:
            return
        if job.done and st.session_state.get(f"{key}_announced") != job.id:
            st.session_state[f"{key}_announced"] = job.id
            st.rerun()
        if not job.done or when_done:
            draw(job, job.snapshot())

    live()


def progress_with_stop(job, fraction: float, text: str, key: str) -> None:
    """A progress bar and a Stop button (disabled once pressed)."""
    p1, p2 = st.columns([5, 1])
    p1.progress(min(max(fraction, 0.0), 1.0), text=text)
    p2.button("■ Stop", on_click=job.stop, disabled=job.stop_requested, width="stretch",
              key=f"{key}_stop_{job.id}")


def kept_result(job_key: str, result_key: str):
    """The result to show: a finished job's (kept in ``st.session_state[job_key]``) replaces
    the one kept under ``result_key``; a job that is still running (or ended with nothing)
    leaves the earlier one in place."""
    ss = st.session_state
    job = ss.get(job_key)
    if job is not None and job.done and getattr(job, "result", None) is not None:
        ss[result_key] = job.result
    return ss.get(result_key)
