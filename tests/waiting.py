"""Waiting for background work in tests, and reading what a page shows (one copy for all)."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(cond: Callable[[], bool], timeout: float = 30.0, poll: float = 0.02) -> bool:
    """Poll ``cond`` until it is true or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(poll)
    return cond()


def wait_for_page_job(at, key: str, what: str = "the run", timeout: float = 240.0) -> None:
    """Rerun an AppTest page until the background job it keeps under ``key`` is done, then
    once more (the full run that draws the result); no exception may appear meanwhile."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = at.session_state[key] if key in at.session_state else None
        if job is not None and job.done:
            at.run()
            return
        time.sleep(0.5)
        at.run()
        assert not at.exception, [e.message for e in at.exception]
    raise AssertionError(f"{what} did not finish in time")


def page_texts(at, *kinds: str) -> str:
    """Markdown, captions, headers and subheaders of an AppTest page, plus the other element
    kinds named (e.g. "info", "success"), one per line."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [h.value for h in at.header] + [h.value for h in at.subheader]
    for kind in kinds:
        parts += [e.value for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def open_page(path: str, timeout: float = 180, **state):
    """An AppTest of the page file ``path`` with ``state`` put into its session first, run
    once; it must raise nothing."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(path, default_timeout=timeout)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def choose(page, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox in a Playwright page (the first click can land
    while an expander around it is still opening, which closes the list again: retry)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    for _ in range(10):
        box.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=3000)
            break
        except Exception:  # noqa: BLE001 - the list closed before the click
            page.keyboard.press("Escape")
    assert box.input_value() == option
