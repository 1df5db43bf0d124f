"""Watching a background job from a page: a fragment that redraws itself while the job runs.

Every page that starts a job (:mod:`diffusion_core.jobs`) keeps it somewhere (its session
state, or the server-wide training slot) and calls :func:`watch` where the live view goes.

The live view costs little: it is drawn when the job has news, not on a clock. The browser
asks for a rerun of the fragment every :data:`TICK_S` seconds, but such requests queue behind
a fragment run that is still going instead of interrupting it; each fragment run draws, then
waits in the server without using the CPU (:func:`wait_for_news`) until the job has changed
and ``every`` seconds have passed, or the job has ended (at once: the results follow without
a polling delay), or :data:`QUIET_S` seconds passed without news, or the visitor clicked
something (:func:`click_waiting`, noticed within :data:`ANSWER_S`: a click is handled only
when the fragment's run ends, so a Stop would otherwise wait up to ``every`` seconds). So a
run that finishes a step every 40 ms is drawn every ``every`` seconds, a queued run about
once a second, and the browser and the server leave the cores to the run in between
(bench/results/live_cost.md).
A CPU run that takes every core (its thread count forced to the number of cores) is redrawn
less often, at least every :data:`~diffusion_core.system.threads.BUSY_REDRAW_S` seconds
(:meth:`diffusion_core.jobs.base.Job.redraw_every`), and the live view says so.

The page's own work (previews, the reruns) computes with one PyTorch thread: the first
:func:`watch` makes that the default for threads that start using torch later. A page's
OpenMP team that sits idle while a run computes with several threads makes each of the run's
parallel steps slower (see :meth:`diffusion_core.jobs.base.Job._threads`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from diffusion_core.jobs.base import set_default_threads

TICK_S = 0.25  # the browser's rerun requests (they queue while a fragment run waits)
QUIET_S = 1.0  # longest wait without news
ANSWER_S = 0.1  # how soon a waiting fragment run notices a click (it then ends at once)
_page_threads_set: list[bool] = []  # the one-thread default is set (once per process)


def wait_for_news(job, seen: int, drawn_at: float, every: float, quiet: float = QUIET_S,
                  clock: Callable[[], float] = time.monotonic,
                  interrupted: Callable[[], bool] | None = None) -> bool:
    """Wait until the live view should be drawn again: True when the job changed since
    version ``seen`` and ``every`` seconds have passed since ``drawn_at`` (a ``clock()``
    time), or the job is done (at once); False when ``max(every, quiet)`` seconds passed
    without news, or at once (within :data:`ANSWER_S`) when ``interrupted()`` says that the
    visitor is waiting (a click: it is handled when this run of the fragment ends)."""
    clicked = interrupted or (lambda: False)
    poll = ANSWER_S if interrupted is not None else float("inf")  # longest sleep in one go
    ready = drawn_at + every
    while not job.done and (left := ready - clock()) > 0:  # too soon: only the end wakes us
        if clicked():
            return False
        job.wait_for_news(job.version, min(left, poll))
    if job.done:
        return True
    end = drawn_at + max(every, quiet)
    while not job.done and job.version == seen and (left := end - clock()) > 0:
        if clicked():
            return False
        job.wait_for_news(seen, min(left, poll))
    return job.version != seen or job.done


def click_waiting() -> bool:
    """Whether the visitor has done something that waits for this script run to end: a
    click on a button (a Stop), another widget changed, or the session closing. The
    fragment's own timer reruns do not count. Reads Streamlit's pending request (its
    internals, as pinned in requirements.txt); False if they are not there."""
    try:
        from streamlit.runtime.scriptrunner_utils import script_requests as sr
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

        requests = get_script_run_ctx().script_requests
        state, data = requests._state, requests._rerun_data
        if state == sr.ScriptRequestType.STOP:
            return True
        if state != sr.ScriptRequestType.RERUN:
            return False
        if not data.fragment_id_queue or data.is_fragment_scoped_rerun:
            return True  # a rerun of the whole page
        widgets = data.widget_states.widgets if data.widget_states is not None else []
        return any(sr._has_active_trigger_value(w) for w in widgets)
    except Exception:  # noqa: BLE001 - another Streamlit: no early answer, nothing breaks
        return False


def job_state(job) -> tuple[Any, bool]:
    """(the job or None, whether it is still running)."""
    return job, job is not None and not job.done


def watch(get_job: Callable[[], Any], draw: Callable[[Any, dict], None], every: float = 0.5,
          key: str = "job", when_done: bool = False) -> None:
    """Draw ``draw(job, snapshot)`` now and, while the job runs, again whenever it has news,
    at most every ``every`` seconds (see the module's notes).

    When the job ends, the whole page reruns once (so that it can show the results, and the
    buttons that were disabled during the run come back); ``st.session_state[key +
    "_announced"]`` remembers which job that was done for, and a full run of the page marks a
    finished job as shown at once. ``when_done``: keep drawing the live view of a finished job
    too (else only the results below show it)."""
    if not _page_threads_set:
        set_default_threads(1)
        _page_threads_set.append(True)
    job, running = job_state(get_job())
    if job is not None and job.done:  # this run of the whole page shows it
        st.session_state[f"{key}_announced"] = job.id
    drawn: dict[str, Any] = {}  # the fragment's last drawing: job id, version, when

    @st.fragment(run_every=TICK_S if running else None)
    def live() -> None:
        job = get_job()
        if job is None:
            return
        if job.done and st.session_state.get(f"{key}_announced") != job.id:
            st.session_state[f"{key}_announced"] = job.id
            st.rerun()
        interval = job.redraw_every(every)
        if not job.done or when_done:
            snap = job.snapshot()
            draw(job, snap)
            if not job.done and interval > every:
                st.caption(f"Redrawn every {interval:.0f} s: this run computes with every core "
                           "of this computer, and each redraw would take one from it.")
            drawn.update(job=job.id, version=snap.get("version", 0), at=time.monotonic())
        if not job.done and drawn.get("job") == job.id and not first[0]:
            # a rerun of the fragment: wait here for what is worth drawing next
            if wait_for_news(job, drawn["version"], drawn["at"], interval, QUIET_S,
                             interrupted=click_waiting) and job.done:
                st.session_state[f"{key}_announced"] = job.id
                st.rerun()
        first[0] = False

    first = [True]  # the page's own run draws and goes on at once
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
