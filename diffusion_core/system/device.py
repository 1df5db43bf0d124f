"""Which device runs the models, what to call it, and how much memory the process used."""

from __future__ import annotations

import torch

from diffusion_core.system.threads import ThreadPlan, available_cores


def pick_device(name: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU, unless a device is named."""
    if name and name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_label(device: torch.device, plan: ThreadPlan | None = None) -> str:
    """A short description for people: the GPU's name, or the CPU with the threads of a run's
    ``plan`` ("CPU, 1 thread of 2 (one left for the page)"), else with the cores this
    process may use ("CPU (2 cores)": the same words from every thread, whatever thread
    count a run has given itself meanwhile)."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    if plan is not None:
        return f"CPU, {plan.words()}"
    cores = available_cores()
    return f"CPU ({cores} core{'s' if cores != 1 else ''})"


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
