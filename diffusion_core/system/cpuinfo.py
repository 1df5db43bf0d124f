"""What CPU this is: its model name and feature flags (for benchmark records and for choosing
fast paths). Linux reads ``/proc/cpuinfo``; elsewhere the name falls back to ``platform`` and
the flags to an empty set."""

from __future__ import annotations

import platform
from pathlib import Path


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="ignore").splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name, e.g. "Intel(R) Xeon(R) Processor"."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags as the kernel lists them (e.g. "avx512_vnni")."""
    return set((_cpuinfo_field("flags") or "").split())
