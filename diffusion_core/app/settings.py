"""Server-side clamps for whatever a page hands in: widget bounds are not trusted.

A browser can send any value for any widget, and session state survives from other pages
with other bounds; every number and choice a request uses goes through one of these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from diffusion_core.maths.schedules import (
    T_DEFAULT,
    T_MAX,
    T_MIN,
    Schedule,
    canonical_schedule,
    make_schedule,
)
from diffusion_core.units import clamp_int

T = TypeVar("T")






def choose(v: Any, options: Iterable[T], default: T) -> T:
    """``v`` if it is one of ``options``, else ``default``."""
    return v if v in list(options) else default


def keep_known(values: Any, options: Sequence[T]) -> list[T]:
    """The entries of ``values`` (a list, or nothing) that are ``options``, in their order."""
    try:
        values = list(values or [])
    except TypeError:
        return []
    return [v for v in values if v in options]


def clamp_schedule(name: Any, T: Any) -> Schedule:
    """The schedule called ``name`` (an old name is mapped, anything unknown is "linear") with
    ``T`` clamped to T_MIN..T_MAX."""
    return make_schedule(canonical_schedule(str(name)), clamp_int(T, T_MIN, T_MAX, T_DEFAULT))
