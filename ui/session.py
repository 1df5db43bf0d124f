"""Is this browser session still connected? A check that background threads may call."""

from __future__ import annotations

from collections.abc import Callable


def session_alive_check() -> Callable[[], bool] | None:
    """A function that returns False once the current browser session has disconnected
    (tab closed, network gone), and True again if it reconnects. Safe to call from any
    thread. ``None`` outside a real ``streamlit run`` server (nothing to watch)."""
    try:
        from streamlit import runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is None or not runtime.exists():
            return None
        rt, sid = runtime.get_instance(), ctx.session_id
    except Exception:  # noqa: BLE001 - a streamlit without these internals: no check
        return None
    # only a real False counts as gone (AppTest's stand-in runtime answers with a mock)
    return lambda: rt.is_active_session(sid) is not False
